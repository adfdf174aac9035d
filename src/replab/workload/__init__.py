"""Layer 4, the workload: writers that drive inserts at the cluster and record every acknowledged write in the
ledger.
"""
