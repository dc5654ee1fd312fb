"""The project's own errors: the base and the general ones here, each package's own beside its code.

    MonitorError                    every error this package raises on purpose
    ├── ConfigError                 settings that cannot be used (placeholder secrets, bad values)
    │   ├── SealingRefused          no key to seal a secret with, outside the demo               (sealing)
    │   └── SecretUnreadable        stored secrets the configured keys cannot open, by row       (sealing)
    ├── DatabaseNotMigrated         the database schema is behind the code: run `monitor db upgrade`
    ├── NotFound                    a code that names nothing (API: 404)
    │   └── UnknownProfile          a device names a profile no loaded file defines   (collectors.errors)
    ├── Conflict                    a change that contradicts the current state (API: 409)
    │   └── InvalidTransition       an action the ticket's status does not allow   (tickets.workflow)
    ├── InvalidInput                input refused with a list of precise problems (API: 422)
    │   └── FleetFileError          a fleet file refused whole, one problem per bad row and field
    ├── CollectError                a device could not be heard or understood; `kind` says why (collectors.errors)
    ├── ProfileError                device profiles refused at load, every problem found   (collectors.errors)
    ├── DatabaseAway                a collector's observations held while the database is away (collectors.errors)
    ├── DeliveryError               one notification attempt failed; permanent or when to retry (alerts.notify.errors)
    ├── WorkerError                 the metrics worker did not answer in time or as agreed  (metrics.worker)
    └── GrafanaError                Grafana unreachable or refusing a request               (grafana.client)

Errors of the libraries below (SQLAlchemy, YAML, httpx, aiohttp, the SNMP and MQTT libraries) are
turned into these at the boundary where they happen (`raise ... from exc`), so that callers handle one
family. Plain `ValueError`s remain only for a precondition of a pure function (a naive datetime given
to the SLA arithmetic) and inside a module, caught before they leave it (a reading that does not parse).
"""

from __future__ import annotations

from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error raised on purpose by this package."""


class ConfigError(MonitorError):
    """Settings that cannot be used as given."""


class DatabaseNotMigrated(MonitorError):
    """The database schema is not at the revision this code expects."""

    def __init__(self, current: str | None, expected: str) -> None:
        self.current = current
        self.expected = expected
        where = "is empty (never migrated)" if current is None else f"is at revision {current}"
        super().__init__(f"the database {where}, this code needs revision {expected}: run `monitor db upgrade`")


class NotFound(MonitorError):
    """A code or id that names nothing."""

    def __init__(self, what: str, code: str) -> None:
        self.what = what
        self.code = code
        super().__init__(f"no {what} with code {code!r}")


class Conflict(MonitorError):
    """A change refused because of the current state of the thing it changes."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One precise reason why an input was refused: where (line, field) and why."""

    field: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.reason}"


class InvalidInput(MonitorError):
    """Input refused, with every problem found (not just the first)."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(message)


class FleetFileError(InvalidInput):
    """A fleet file refused whole: nothing of it was written."""
