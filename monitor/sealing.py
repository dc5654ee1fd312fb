"""Secrets sealed at rest: notification channels' secrets and devices' SNMP credentials, under Fernet keys.

    keyring = Keyring.from_settings(settings)     # MONITOR_SECRET_KEYS, newest first
    text = keyring.seal("public")                 # 'sealed:v1:gAAAAA…'
    keyring.open(text)                            # 'public'; a value without the prefix is a clear one, as it is

A sealed value is `sealed:v1:` and a Fernet token (AES-128-CBC with HMAC-SHA256): it seals under the first
(newest) key and opens under any of them, so a new key is put first and the old one kept until
`monitor secrets rotate` has re-sealed everything under the new one. A value without the prefix was stored
before sealing existed: it is read as it is, and sealed when next written or rotated.

The columns that hold secrets seal and open by themselves (`SealedText`, `SealedJSON`), so every write path
seals and every read path opens, with the process's keyring (`process_keyring()`): the one the command that
started the process installed from its settings (`use_settings_keys`, called by `cli/_common.cli_settings`;
the `monitor` command puts them back as they were when a command ends, `keys_restorer`), else one built once
from the environment (a spawned web worker, a script, the tests).

Without a key (MONITOR_SECRET_KEYS unset):

- `monitor demo`, and a process whose environment says nothing of keys or strictness (tests, a script), seal
  under the demo key, derived from a public phrase: it keeps a secret out of a casual look at a dump, no more;
- every other `monitor` command, and the processes it spawns, refuses to store a secret (`SealingRefused`,
  saying how to make a key). It still reads secrets stored in clear or under the demo key.

Every keyring also opens values sealed under the demo key (they are no more secret than clear ones, which are
read too); `monitor secrets check` counts both as unprotected and `rotate` seals them under the newest key.

A value that none of the keys opens is read as `Unopened`: its sealed text, written back unchanged if the row
is saved again, never usable as the secret. Whoever needs the secret (a sender, a poller) refuses it with
`SecretUnreadable`, naming the row, and never sees a bare `InvalidToken`.

    ConfigError
    ├── SealingRefused      no key to seal with: MONITOR_SECRET_KEYS is not set outside the demo
    └── SecretUnreadable    stored secrets the configured keys cannot open, with the rows they belong to
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from monitor.config import CONFIG_FILE_VARIABLE, MAKE_A_SECRET_KEY, SECRET_KEYS_VARIABLE, Settings, load_settings
from monitor.errors import ConfigError

PREFIX = "sealed:v1:"
#: The demo's key: derived from a phrase anyone can read here, so it protects nothing.
DEMO_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"lang-son-fleet-monitor: the demo's public sealing key").digest())
#: Set by a `monitor` command for the processes it spawns: "1" when, without keys, they must refuse to seal.
STRICT_VARIABLE = "MONITOR_SEALING_STRICT"
# Opened values are kept per keyring, so that reading a fleet's devices again costs no decryption
# (a decryption is ~20 µs; 131,072 entries take ~40 MB at most).
_OPENED_CACHE_SIZE = 1 << 17


class SealingRefused(ConfigError):
    """There is no key to seal a secret with, and outside the demo a secret is never stored in clear."""

    def __init__(self) -> None:
        super().__init__(
            f"refusing to store a secret in clear: set {SECRET_KEYS_VARIABLE} (Fernet keys, newest first, "
            f"comma-separated); make a key with: {MAKE_A_SECRET_KEY}"
        )


class SecretUnreadable(ConfigError):
    """Stored secrets that none of the configured keys opens; `rows` names where they are."""

    def __init__(self, rows: Sequence[str], reason: str) -> None:
        self.rows = list(rows)
        self.reason = reason
        super().__init__(
            f"cannot open the stored secrets of {', '.join(self.rows)}: {reason}; add the key they were sealed "
            f"with to {SECRET_KEYS_VARIABLE} (then run `monitor secrets rotate`), or enter them again"
        )


class Unopened(str):
    """A sealed value the configured keys could not open: its sealed text, and why (`reason`).

    A `str`, so that it is stored back unchanged (`SealedText`, `SealedJSON`), compares unequal to any new
    value and counts as set; never a secret to use: check with `isinstance` before using a stored secret.
    """

    reason: str

    def __new__(cls, sealed: str, reason: str) -> Unopened:
        value = super().__new__(cls, sealed)
        value.reason = reason
        return value

    def __repr__(self) -> str:
        return f"Unopened(<sealed>, reason={self.reason!r})"


class SealState(StrEnum):
    """How a stored value is kept, as `monitor secrets check` counts it."""

    NEWEST = "newest"  # sealed under the key that seals now
    OLDER = "older"  # under another configured key: `monitor secrets rotate` moves it to the newest
    DEMO = "demo"  # under the public demo key: no protection
    CLEAR = "clear"  # stored before sealing existed: no protection
    UNREADABLE = "unreadable"  # none of the keys opens it


def is_sealed(text: str) -> bool:
    """Whether a stored value is sealed (else it is a clear one, stored before sealing existed)."""
    return text.startswith(PREFIX)


class Keyring:
    """The keys that seal (the first) and open (any, and the demo key) the stored secrets.

    `keys` are Fernet keys, newest first. Without any, `demo` says whether to seal under the demo key;
    if not, sealing is refused (`SealingRefused`) and only clear or demo-sealed values open.
    """

    def __init__(self, keys: Sequence[str | bytes] = (), *, demo: bool = False) -> None:
        try:
            self._keys = [Fernet(key) for key in keys]
        except ValueError as exc:  # binascii.Error too; the key itself is never repeated
            raise ConfigError(f"{SECRET_KEYS_VARIABLE}: not a Fernet key; make one with: {MAKE_A_SECRET_KEY}") from exc
        if any(_raw(key) == DEMO_KEY for key in keys):
            raise ConfigError(
                f"{SECRET_KEYS_VARIABLE} holds the public demo key: make a key of your own with: {MAKE_A_SECRET_KEY}"
            )
        self._demo = Fernet(DEMO_KEY)
        self.key_count = len(self._keys)
        #: Whether new values are sealed under the demo key (no key configured, demo or lenient).
        self.seals_with_demo_key = not self._keys and demo
        self._sealer: Fernet | None = self._keys[0] if self._keys else (self._demo if demo else None)
        self._openers = MultiFernet([*self._keys, self._demo])
        self._open_cached: Callable[[str], str] = lru_cache(maxsize=_OPENED_CACHE_SIZE)(self._open)

    @classmethod
    def from_settings(cls, settings: Settings, *, strict: bool = True) -> Keyring:
        """The keyring of `settings.secret_keys`; without keys, the demo key seals in demo mode (or when not
        `strict`), and sealing is refused otherwise."""
        keys = [key.get_secret_value() for key in settings.secret_keys]
        return cls(keys, demo=settings.is_demo or not strict)

    @property
    def can_seal(self) -> bool:
        """Whether this keyring may seal (it has a key, or may use the demo key)."""
        return self._sealer is not None

    def require_sealing(self) -> None:
        """`SealingRefused` unless this keyring can seal: call it before a write that stores a secret."""
        if self._sealer is None:
            raise SealingRefused()

    def seal(self, text: str) -> str:
        """`text` sealed under the newest key (a new token each time)."""
        if self._sealer is None:
            raise SealingRefused()
        return PREFIX + self._sealer.encrypt(text.encode()).decode("ascii")

    def open(self, text: str) -> str:
        """The clear value of a stored one: opened if sealed (`Unopened` if no key opens it), else as it is."""
        if not text.startswith(PREFIX):
            return text
        return self._open_cached(text)

    def _open(self, text: str) -> str:
        try:
            return self._openers.decrypt(text[len(PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            return Unopened(text, self.why_unopened())

    def why_unopened(self) -> str:
        """Why a sealed value does not open with these keys, for people."""
        if not self._keys:
            return f"{SECRET_KEYS_VARIABLE} is not set"
        keys = f"{self.key_count} key{'s' if self.key_count != 1 else ''}"
        return f"it was sealed under a key that is not among the {keys} of {SECRET_KEYS_VARIABLE}"

    def state(self, text: str) -> SealState:
        """How a stored value is kept (see `SealState`)."""
        if not text.startswith(PREFIX):
            return SealState.CLEAR
        token = text[len(PREFIX) :].encode("ascii", errors="replace")
        candidates: list[tuple[Fernet, SealState]] = []
        if self._sealer is not None:
            candidates.append((self._sealer, SealState.NEWEST))
        candidates += [(key, SealState.OLDER) for key in self._keys if key is not self._sealer]
        if self._sealer is not self._demo:
            candidates.append((self._demo, SealState.DEMO))
        for fernet, state in candidates:
            try:
                fernet.decrypt(token)
            except InvalidToken:
                continue
            return state
        return SealState.UNREADABLE

    def reseal(self, text: str) -> str:
        """A stored value sealed again under the newest key: a clear one sealed, a sealed one re-encrypted
        (keeping its time). `Unopened` when no key opens it; `SealingRefused` when this keyring cannot seal."""
        if self._sealer is None:
            raise SealingRefused()
        if not text.startswith(PREFIX):
            return self.seal(text)
        rotating = MultiFernet([self._sealer, *(k for k in (*self._keys, self._demo) if k is not self._sealer)])
        try:
            return PREFIX + rotating.rotate(text[len(PREFIX) :].encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            return Unopened(text, self.why_unopened())


def _raw(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


# --- the process's keyring ----------------------------------------------------------------------

_installed: Keyring | None = None
_from_environment: tuple[tuple[str | None, ...], Keyring] | None = None
_lock = threading.Lock()
_ENVIRONMENT = (SECRET_KEYS_VARIABLE, CONFIG_FILE_VARIABLE, "MONITOR_MODE", STRICT_VARIABLE)


def use_keys(keyring: Keyring | None) -> Keyring | None:
    """Make `keyring` the process's (None: the environment's again); returns the one it replaces."""
    global _installed
    with _lock:
        previous, _installed = _installed, keyring
    return previous


def use_settings_keys(settings: Settings) -> None:
    """Make the keys of `settings` this process's, and tell the processes it spawns whether to refuse to seal
    without a key (outside the demo: yes)."""
    use_keys(Keyring.from_settings(settings))
    os.environ[STRICT_VARIABLE] = "0" if settings.is_demo else "1"


def keys_restorer() -> Callable[[], None]:
    """What puts the process's keys, and the rule for the processes it spawns, back as they are now."""
    installed, rule = _installed, os.environ.get(STRICT_VARIABLE)

    def restore() -> None:
        use_keys(installed)
        if rule is None:
            os.environ.pop(STRICT_VARIABLE, None)
        else:
            os.environ[STRICT_VARIABLE] = rule

    return restore


def process_keyring() -> Keyring:
    """The keyring the sealed columns use: the installed one, else the environment's (built once per
    environment: MONITOR_SECRET_KEYS, MONITOR_CONFIG_FILE, MONITOR_MODE and the strictness a command set)."""
    installed = _installed
    if installed is not None:
        return installed
    global _from_environment
    marker = tuple(os.environ.get(name) for name in _ENVIRONMENT)
    cached = _from_environment
    if cached is not None and cached[0] == marker:
        return cached[1]
    with _lock:
        keyring = Keyring.from_settings(load_settings(), strict=os.environ.get(STRICT_VARIABLE) == "1")
        _from_environment = (marker, keyring)
    return keyring


def seal(text: str) -> str:
    """`text` sealed with the process's keyring."""
    return process_keyring().seal(text)


def open_sealed(text: str) -> str:
    """A stored value opened with the process's keyring (see `Keyring.open`)."""
    return process_keyring().open(text)


def require_sealing() -> None:
    """`SealingRefused` unless the process can seal: before a write that stores a secret."""
    process_keyring().require_sealing()


# --- the columns --------------------------------------------------------------------------------


class SealedText(sa.TypeDecorator[str]):
    """A secret string: sealed on the way in, opened on the way out (`Unopened` if no key opens it).

    TEXT, since a token is longer than its secret; a column that was a VARCHAR before sealing keeps it on
    SQLite (`legacy_length`), which stores any length in one and cannot change a column's type in place.
    """

    impl = sa.Text
    cache_ok = True

    def __init__(self, legacy_length: int | None = None) -> None:
        super().__init__()
        self.legacy_length = legacy_length

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite" and self.legacy_length is not None:
            return sa.String(self.legacy_length)
        return sa.Text()

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if not value:
            return value
        if isinstance(value, Unopened):
            return str(value)
        return process_keyring().seal(value)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if not value:
            return value
        return process_keyring().open(value)


class SealedJSON(sa.TypeDecorator[dict[str, Any]]):
    """A JSON object whose `sealed_keys` hold secrets (strings), sealed and opened as `SealedText` does."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, sealed_keys: Iterable[str]) -> None:
        super().__init__()
        self.sealed_keys = frozenset(sealed_keys)

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if not isinstance(value, dict):
            return value
        keyring = process_keyring()
        return {
            key: (str(item) if isinstance(item, Unopened) else keyring.seal(item))
            if key in self.sealed_keys and isinstance(item, str) and item
            else item
            for key, item in value.items()
        }

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if not isinstance(value, dict):
            return value
        keyring = process_keyring()
        return {
            key: keyring.open(item) if key in self.sealed_keys and isinstance(item, str) and item else item
            for key, item in value.items()
        }


__all__ = [
    "DEMO_KEY",
    "PREFIX",
    "Keyring",
    "SealState",
    "SealedJSON",
    "SealedText",
    "SealingRefused",
    "SecretUnreadable",
    "Unopened",
    "is_sealed",
    "keys_restorer",
    "open_sealed",
    "process_keyring",
    "require_sealing",
    "seal",
    "use_keys",
    "use_settings_keys",
]
