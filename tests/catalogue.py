"""Which catalogue servers the behavioural tests run on, and how a test asks for one.

`make test` fetches them first (``replab servers add``). A test asking for a server that is not installed
fails under CI (a claim about a server counts only once a test ran on it) and is skipped elsewhere, saying
how to add it.
"""

from __future__ import annotations

import os

import pytest

from replab.servers import catalogue as servers

# the servers every behavioural matrix test runs on; REPLAB_TEST_SERVERS narrows it (e.g. "mariadb-10.11")
MATRIX = [s for s in os.environ.get("REPLAB_TEST_SERVERS", "mariadb-10.11,mysql-9.7,mariadb-11.8").split(",") if s]


def require(name: str) -> servers.Server:
    try:
        return servers.resolve(name)
    except Exception as exc:  # noqa: BLE001 - any reason it cannot be had is the same for the test
        why = f"{name} is not available here ({exc}); add it with: replab servers add {name}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def params(*names: str) -> list[str]:
    """The matrix servers among ``names`` (all of the matrix when none are named)."""
    wanted = names or tuple(MATRIX)
    return [n for n in wanted if n in MATRIX]
