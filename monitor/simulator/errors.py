"""The simulator's own error: it cannot run as asked (a port taken, a filter the kernel refuses)."""

from __future__ import annotations

from monitor.errors import MonitorError


class SimulatorError(MonitorError):
    """The simulated fleet cannot start as asked; the message says what to change."""
