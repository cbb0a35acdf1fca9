"""watchkeeper's exception tree.

::

    WatchkeeperError            root; the CLI turns it into one line and an exit code
    ├── ConfigError             watchkeeper.yaml is wrong; carries every problem with its place
    ├── SchemaError             data does not fit the declared schema as a whole
    ├── UnknownModelError       a model name that the config does not declare
    ├── UnknownMethodError      a registry key that is not registered (lists the known keys)
    ├── InputError              a file or table that cannot be read
    └── StoreError              the engine failed; always raised ``from`` the engine's error

Row-level problems are never exceptions: bad rows go to quarantine with a reason code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class WatchkeeperError(Exception):
    """Root of every error watchkeeper raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake in the configuration, with its place."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigError(WatchkeeperError):
    """The configuration is invalid; ``problems`` lists every mistake found."""

    exit_code = 2

    def __init__(self, problems: Sequence[ConfigProblem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        head = f"invalid configuration in {source}" if source else "invalid configuration"
        lines = [f"{head} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class SchemaError(WatchkeeperError):
    """Data that cannot be matched to the declared schema at all."""


class UnknownModelError(WatchkeeperError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "(none declared)"
        super().__init__(f"unknown model {name!r}; the config declares: {names}")


class UnknownMethodError(WatchkeeperError):
    def __init__(self, kind: str, key: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown {kind} {key!r}; registered: {', '.join(sorted(known))}")


class InputError(WatchkeeperError):
    """An input file or table that cannot be read."""


class StoreError(WatchkeeperError):
    """The storage engine failed. Raised ``from`` the engine's own exception."""
