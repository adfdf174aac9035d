"""replab: a replication lab for MySQL and MariaDB.

>>> from replab import Cluster
>>> with Cluster.up(nodes=3, home="/tmp/lab") as cluster:
...     cluster.sql("mysql-m", "INSERT INTO mydb.events (name) VALUES ('x')")
"""

from .cluster import Cluster, NodeStatus, SqlResult
from .config import ClusterSpec
from .errors import ReplabError

__version__ = "0.1.0"
__all__ = ["Cluster", "ClusterSpec", "NodeStatus", "ReplabError", "SqlResult", "__version__"]
