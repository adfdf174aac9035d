"""replab: a replication lab for MySQL and MariaDB.

>>> from replab import Cluster
>>> with Cluster.up(nodes=3, home="/tmp/lab") as cluster:
...     cluster.sql("mysql-m", "INSERT INTO mydb.events (name) VALUES ('x')")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Cluster", "ClusterSpec", "NodeStatus", "ReplabError", "SqlResult", "__version__"]

if TYPE_CHECKING:
    from .cluster.cluster import Cluster
    from .cluster.core import NodeStatus, SqlResult
    from .core.config import ClusterSpec
    from .core.errors import ReplabError

_LAZY = {"Cluster": "cluster.cluster", "NodeStatus": "cluster.core", "SqlResult": "cluster.core",
         "ClusterSpec": "core.config", "ReplabError": "core.errors"}


def __getattr__(name: str) -> Any:
    # Imported on first use, so small entry points (the link relay process) start fast.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'replab' has no attribute {name!r}")
