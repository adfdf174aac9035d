"""Layer 0, the base: the error tree, settings (ClusterSpec) and the home directory's state. Nothing here talks
to a server.
"""
