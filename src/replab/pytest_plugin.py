"""pytest plugin (registered as the ``replab`` entry point): fixtures that give a test a real cluster.

- ``replab_cluster``: a fresh 3-node cluster in a temporary home, torn down after the test, pass or fail.
- ``replab_cluster_factory``: call it with ``Cluster.up`` arguments to build clusters of your own; every
  cluster it made is torn down after the test.
  ``replab_cluster_factory(topology="chain", nodes=3)`` builds a shape other than the star (``replab
  topology list``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster.cluster import Cluster, teardown_home

teardown = teardown_home  # the name this plugin exported before


@pytest.fixture
def replab_cluster_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    homes: list[Path] = []

    def make(**kwargs: Any) -> Cluster:
        home = tmp_path_factory.mktemp("replab") / "home"
        homes.append(home)
        return Cluster.up(home=home, **kwargs)

    yield make
    for home in homes:
        teardown(home)


@pytest.fixture
def replab_cluster(replab_cluster_factory: Callable[..., Cluster]) -> Cluster:
    return replab_cluster_factory()
