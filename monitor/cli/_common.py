"""What every command of `monitor` shares: settings (refusing bad ones with exit code 2), a migrated engine, logging.

The settings also give the command its keys for the sealed secrets (monitor/sealing.py): outside the demo,
without MONITOR_SECRET_KEYS, a command refuses to store a secret, and so do the processes it starts.
"""

from __future__ import annotations

import logging
import sys
from datetime import date
from typing import NoReturn

import typer
from sqlalchemy.engine import Engine

from monitor.config import MAKE_A_SECRET_KEY, SECRET_KEYS_VARIABLE, Settings, load_settings
from monitor.db import ensure_migrated, make_engine
from monitor.errors import MonitorError
from monitor.sealing import use_settings_keys


def fail(message: str, code: int = 1) -> NoReturn:
    """Say what went wrong on standard error, in red, and end the command with `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def parse_day(text: str, option: str) -> date:
    """A YYYY-MM-DD option, or the command ends with a line naming the option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: a date as YYYY-MM-DD, not {text!r}", 2)


def explain(exc: MonitorError) -> str:
    """An error as one message, with every problem of a refused input on its own line."""
    problems = getattr(exc, "problems", None) or []
    return "\n  ".join([str(exc), *(str(problem) for problem in problems)])


def cli_settings(**overrides: object) -> Settings:
    """The settings from the environment (and `overrides`); invalid ones end the command with code 2.

    Their keys seal and open the stored secrets for as long as the command runs (`sealing.use_settings_keys`;
    `monitor.cli` puts the process's keys back when the command ends).
    """
    try:
        settings = load_settings(**overrides)
        use_settings_keys(settings)
    except MonitorError as exc:
        fail(str(exc), 2)
    return settings


def production_settings() -> Settings:
    """Settings for a long-running process: placeholder secrets are refused, naming each."""
    settings = cli_settings()
    try:
        settings.require_real_secrets()
    except MonitorError as exc:
        fail(str(exc), 2)
    if not settings.secret_keys:
        typer.secho(
            f"warning: {SECRET_KEYS_VARIABLE} is not set: no secret (a channel's, a device's SNMP credentials) can "
            f"be stored, and none sealed can be opened; make a key with: {MAKE_A_SECRET_KEY}",
            fg=typer.colors.YELLOW,
            err=True,
        )
    return settings


def migrated_engine(settings: Settings) -> Engine:
    """The database engine, once its schema is the one this code needs (else code 2, saying how to upgrade)."""
    engine = make_engine(settings)
    try:
        ensure_migrated(engine)
    except MonitorError as exc:
        fail(str(exc), 2)
    return engine


def configure_logging() -> None:
    """Log lines to standard error, with the time, the level and the logger's name."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # One line per slot job and per MQTT packet would drown what matters.
    for noisy in ("apscheduler", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = ["cli_settings", "configure_logging", "fail", "migrated_engine", "production_settings"]
