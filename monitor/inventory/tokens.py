"""Heartbeat tokens: each push device authenticates with its own random token, stored only as a hash.

Tokens are 192-bit random strings, so a fast SHA-256 is enough (no password stretching needed) and
the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlmodel import Session, col, select

from monitor.errors import NotFound
from monitor.inventory.models import Device


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(code: str, *, session: Session) -> str:
    """Give a device a new token (the old one stops working); the token is returned once, never stored."""
    device = session.exec(select(Device).where(Device.code == code)).first()
    if device is None:
        raise NotFound("device", code)
    token = secrets.token_urlsafe(24)
    device.token_hash = hash_token(token)
    session.add(device)
    session.flush()
    return token


def authenticate_device(code: str, token: str | None, *, session: Session) -> Device | None:
    """The active device whose code and token match, or None (unknown code and wrong token look the same)."""
    device = session.exec(select(Device).where(Device.code == code, col(Device.active).is_(True))).first()
    expected = device.token_hash if device is not None else None
    given = hash_token(token or "")
    # Compare even when the device is unknown, so timing does not tell which codes exist.
    if not hmac.compare_digest(given, expected or "0" * 64) or device is None or not token:
        return None
    return device
