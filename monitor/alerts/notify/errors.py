"""Why a notification could not be delivered.

    MonitorError
    └── DeliveryError       one attempt failed; `permanent` when retrying cannot help (a 4xx answer,
                            a refused mailbox), `retry_after` when the peer said when to come back

Errors of the libraries below (httpx, smtplib, ssl) are turned into this at the edge that calls them,
with a message that never carries a secret (no URL with a bot token, no password).
"""

from __future__ import annotations

from monitor.errors import MonitorError


class DeliveryError(MonitorError):
    """One delivery attempt failed."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(message)


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced by `***`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
