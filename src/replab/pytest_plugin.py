"""pytest plugin (registered as the ``replab`` entry point): fixtures that give a test a real cluster.

- ``replab_cluster``: a fresh 3-node cluster in a temporary home, torn down after the test, pass or fail.
- ``replab_cluster_factory``: call it with ``Cluster.up`` arguments to build clusters of your own; every
  cluster it made is torn down after the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster, remove_state
from .errors import ReplabError


def teardown(home: Path) -> None:
    """Stop whatever a cluster home holds, by its pid files, even if its state is half-written."""
    if not (home / "cluster.json").exists():
        return
    try:
        Cluster.open(home).down()
    except ReplabError:
        with contextlib.suppress(Exception):
            cluster = Cluster.open(home)
            cluster.engine.destroy(cluster.nodes)
        remove_state(home)


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
