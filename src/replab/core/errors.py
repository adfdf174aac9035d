"""The replab error tree.

Every error carries enough to act on it: the node it concerns, what was tried, the last lines of the
server's log where there is one, and a hint saying what to do next. The CLI prints these in one or two
lines (plus the log tail) and exits with code 2; it never shows a traceback for them.
"""

from __future__ import annotations


class ReplabError(Exception):
    """Base of every error replab raises on purpose."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        action: str | None = None,
        hint: str | None = None,
        log_tail: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node = node
        self.action = action
        self.hint = hint
        self.log_tail = log_tail or []

    def __str__(self) -> str:
        prefix = f"{self.node}: " if self.node and not self.message.startswith(self.node) else ""
        return prefix + self.message

    def render(self) -> str:
        """The full human text: message, hint and log tail."""
        lines = [f"error: {self}"]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        if self.log_tail:
            lines.append("last lines of the server log:")
            lines.extend(f"  {line}" for line in self.log_tail)
        return "\n".join(lines)


class ConfigError(ReplabError):
    """Bad input from the user: flags, environment, replab.toml. ``errors`` lists every problem found."""

    def __init__(self, errors: list[str] | str, *, hint: str | None = None) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors), hint=hint)


class ClusterNotFound(ReplabError):
    """No cluster state in the home directory."""


class StateError(ReplabError):
    """The cluster state on disk is unreadable or does not fit the request (e.g. corrupt cluster.json)."""


class BinaryNotFound(ReplabError):
    """A server or client program is missing."""


class PortInUse(ReplabError):
    """A port replab wanted already answers or is bound."""


class NodeStartError(ReplabError):
    """A server died while starting or never became ready."""


class ReplabTimeout(ReplabError):
    """Something waited for did not happen in time."""


class NodeStateError(ReplabError):
    """The node is not in a state that allows the operation (kill a stopped node, resume a running one)."""


class ReplicationError(ReplabError):
    """Replication could not be set up or is broken."""


class NotSupported(ReplabError):
    """The engine or flavor cannot do this."""


class SqlError(ReplabError):
    """A statement failed on a node."""

    def __init__(self, message: str, *, node: str | None = None, errno: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, node=node, hint=hint)
        self.errno = errno
