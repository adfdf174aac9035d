"""Layer 3, the cluster: named nodes with roles over an engine, replication set-up and normalized status,
building a new cluster, and who the primary is now.
"""
