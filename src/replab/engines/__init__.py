"""Engines: where servers run. ``local`` (processes on this machine) is the default.

A registry, not a chain of ifs: an engine is a subclass of ``Engine`` listed in ``ENGINES``.
"""

from __future__ import annotations

from ..core.errors import NotSupported
from .base import BuildPlan, Engine, NodeInfo
from .compose import ComposeEngine
from .external import ExternalEngine
from .local import LocalEngine

ENGINES: dict[str, type[Engine]] = {cls.name: cls for cls in (LocalEngine, ComposeEngine, ExternalEngine)}


def get_engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name``."""
    try:
        return ENGINES[name]
    except KeyError:
        raise NotSupported(f"unknown engine {name!r}", hint=f"use --engine {', '.join(ENGINES)}") from None


__all__ = ["BuildPlan", "Engine", "NodeInfo", "ENGINES", "get_engine_class"]
