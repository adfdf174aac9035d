"""Layer 4, faults and role changes: the nemesis (kill, stop, pause, partition, drift), repair (rebuild a node),
switchover and failover.
"""
