"""Layer 4, verification: the ledger of acknowledged writes, the checker (pure verdicts over collected facts),
row hashing, and diagnosis of replication failures.
"""
