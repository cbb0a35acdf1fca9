"""watchkeeper's exception tree: every error raised on purpose is one of these.

::

    WatchkeeperError            root; exit code 1, HTTP 400
    ├── ConfigError             watchkeeper.yaml is wrong; every problem with its place (exit 2)
    ├── SchemaError             data does not fit the declared schema as a whole (HTTP 422)
    ├── InputError              a file, table or request that cannot be read
    ├── NotFoundError           a name that is not there (HTTP 404)
    │   ├── UnknownModelError   a model the config does not declare
    │   ├── UnknownAlertError   no alert with that id
    │   ├── UnknownRuleError    no alert rule with that name
    │   └── UnknownMetricError  a metric key the catalogue lacks (lists the nearest)
    ├── UnknownMethodError      a registry key that is not registered (lists the known keys)
    ├── NoReferenceError        a model version has no reference to compare with (HTTP 409)
    ├── TriageError             nothing to triage yet (no values of the metric) (HTTP 409)
    └── StoreError              the engine failed; always raised ``from`` its error (HTTP 503)

Each class carries ``exit_code`` (the CLI's) and ``http_status`` (the API's); the CLI and
the HTTP layer translate with them in one place each. Row-level problems are never
exceptions: bad rows go to quarantine with a reason code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class WatchkeeperError(Exception):
    """Root of every error watchkeeper raises on purpose."""

    exit_code = 1
    http_status = 400


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

    http_status = 422


class InputError(WatchkeeperError):
    """An input file or table that cannot be read."""


class NotFoundError(WatchkeeperError):
    """Something asked for by name that does not exist."""

    http_status = 404


class UnknownModelError(NotFoundError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "(none declared)"
        super().__init__(f"unknown model {name!r}; the config declares: {names}")


class UnknownAlertError(NotFoundError):
    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert {alert_id!r}; `watchkeeper alerts list` shows them")


class UnknownRuleError(NotFoundError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        listed = ", ".join(sorted(known)) or "none configured"
        super().__init__(f"no rule {name!r} (rules: {listed})")


class UnknownMetricError(NotFoundError):
    def __init__(self, key: str, nearest: Iterable[str]) -> None:
        close = ", ".join(nearest)
        super().__init__(f"unknown metric {key!r}" + (f"; did you mean {close}?" if close else ""))


class UnknownMethodError(WatchkeeperError):
    def __init__(self, kind: str, key: str, known: Iterable[str]) -> None:
        super().__init__(f"unknown {kind} {key!r}; registered: {', '.join(sorted(known))}")


class NoReferenceError(WatchkeeperError):
    http_status = 409

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model {model!r} has no reference to compare with; store one with "
            f"`watchkeeper reference set --model {model} FILE`"
        )


class TriageError(WatchkeeperError):
    """Nothing to investigate yet (the metric has no values)."""

    http_status = 409


class StoreError(WatchkeeperError):
    """The storage engine failed. Raised ``from`` the engine's own exception."""

    http_status = 503


__all__ = [
    "ConfigError",
    "ConfigProblem",
    "InputError",
    "NoReferenceError",
    "NotFoundError",
    "SchemaError",
    "StoreError",
    "TriageError",
    "UnknownAlertError",
    "UnknownMethodError",
    "UnknownMetricError",
    "UnknownModelError",
    "UnknownRuleError",
    "WatchkeeperError",
]
