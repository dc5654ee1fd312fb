"""A repeating job's failures in the log (monitor.failures): a bug's traceback once; the database or the network
failing (the weather of a long-running service) in one line, however deep it was wrapped."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from monitor.collectors.errors import DatabaseAway
from monitor.failures import FailureReport, operational


def _locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_an_away_database_is_one_line_and_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.failures")
    try:
        try:
            raise _locked()
        except sa_exc.OperationalError as exc:
            raise DatabaseAway("12 observations held for the database") from exc
    except DatabaseAway as wrapped:
        away = wrapped
    with caplog.at_level(logging.ERROR, logger="test.failures"):
        FailureReport(log, "saving observations", 0.5).failed(away)
        FailureReport(log, "a dispatcher cycle", 1).failed(ValueError("a bug"))
    said, bug = caplog.records
    assert said.exc_info is None and "retrying every 0.5 s: 12 observations held" in said.getMessage()
    assert bug.exc_info is not None and bug.exc_info[0] is ValueError


def test_what_counts_as_the_database_or_the_network() -> None:
    assert operational(_locked()) and operational(ConnectionRefusedError()) and operational(sa_exc.TimeoutError())
    assert not operational(ValueError()) and not operational(sa_exc.IntegrityError("INSERT", {}, Exception()))
