"""Engines: where servers run. ``local`` (processes on this machine) is the default."""

from __future__ import annotations

from .base import Engine, NodeInfo


def get_engine_class(name: str) -> type[Engine]:
    if name == "local":
        from .local import LocalEngine

        return LocalEngine
    from ..errors import NotSupported

    raise NotSupported(f"engine {name!r} is not available yet", hint="use --engine local")


__all__ = ["Engine", "NodeInfo", "get_engine_class"]
