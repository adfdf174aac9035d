"""Engines: where servers run. ``local`` (processes on this machine) is the default."""

from __future__ import annotations

from .base import BuildPlan, Engine, NodeInfo


def get_engine_class(name: str) -> type[Engine]:
    """The engine class for ``local``, ``compose`` or ``external``."""
    if name == "local":
        from .local import LocalEngine

        return LocalEngine
    if name == "compose":
        from .compose import ComposeEngine

        return ComposeEngine
    if name == "external":
        from .external import ExternalEngine

        return ExternalEngine
    from ..errors import NotSupported

    raise NotSupported(f"unknown engine {name!r}", hint="use --engine local, compose or external")


__all__ = ["BuildPlan", "Engine", "NodeInfo", "get_engine_class"]
