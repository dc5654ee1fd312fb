"""Every error the project raises on purpose derives from monitor.errors.MonitorError (DESIGN.md: one hierarchy)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import monitor
from monitor.errors import MonitorError

#: Exceptions that never leave their module: the request guard's and the metrics server's control flow.
PRIVATE_PREFIX = "_"


def _project_exceptions() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(monitor.__path__, "monitor."):
        if ".migrations." in info.name or info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith(PRIVATE_PREFIX)
            ):
                found.append(value)
    return found


def test_every_public_project_error_derives_from_monitor_error() -> None:
    errors = _project_exceptions()
    assert len(errors) > 15, "the walk found the project's errors"
    strays = sorted(f"{e.__module__}.{e.__qualname__}" for e in errors if not issubclass(e, MonitorError))
    assert strays == []
