"""Layer 1, servers and their dialects: flavors (MariaDB vs MySQL SQL), typed GTID sets, connections, server
processes, the server catalogue, and finding replab's stray processes.
"""
