"""The collectors' own errors: why a poll failed, why a device profile was refused, why facts wait.

    MonitorError (monitor.errors)
    ├── CollectError            a poll, push or trap could not be turned into facts; `kind` says why
    ├── ProfileError            device profiles refused at load, every problem with its file and line
    ├── DatabaseAway            the database could not take observations now; they are held, not lost
    └── NotFound
        └── UnknownProfile      a device names a profile that no loaded file defines

Errors of the libraries below (aiohttp, aiosnmp, pysnmp, aiomqtt, json, yaml) are translated
into these at the edge where they happen (`raise CollectError(...) from exc`). Pollers never let
a `CollectError` escape: they turn it into a failed `Observation` whose `error` is
`"{kind}: {detail}"`, so the kind is machine-readable and the detail is for people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from monitor.errors import MonitorError, NotFound
from monitor.labels import LabelledEnum


class FailureKind(LabelledEnum):
    """Why a device could not be judged: the first word of a failed observation's `error`."""

    TIMEOUT = "timeout", "Hết thời gian chờ", "No answer in time"
    REFUSED = "refused", "Từ chối kết nối", "Connection refused"
    UNREACHABLE = "unreachable", "Không tới được", "Unreachable"
    DNS = "dns", "Không phân giải được tên", "Name did not resolve"
    TLS = "tls", "Lỗi TLS", "TLS error"
    HTTP_STATUS = "http_status", "Mã trả lời HTTP lỗi", "HTTP error status"
    TOO_LARGE = "too_large", "Trả lời quá lớn", "Reply too large"
    BAD_JSON = "bad_json", "Không phải JSON", "Not JSON"
    BAD_PAYLOAD = "bad_payload", "Dữ liệu sai định dạng", "Malformed data"
    REDIRECT_REFUSED = "redirect_refused", "Chuyển hướng bị từ chối", "Redirect refused"
    SNMP_ERROR = "snmp_error", "Lỗi SNMP", "SNMP error"
    SNMP_NO_SUCH = "snmp_no_such", "Không có đối tượng SNMP", "No such SNMP object"
    SNMP_DECODE = "snmp_decode", "Gói SNMP hỏng", "Undecodable SNMP reply"
    AUTH = "auth", "Sai thông tin xác thực", "Authentication failed"
    BROKER = "broker", "Lỗi máy chủ MQTT", "MQTT broker error"
    # The collector's own: it could not try (its keys cannot open the device's sealed credentials).
    CONFIG = "config", "Lỗi cấu hình bộ thu thập", "Collector configuration error"


#: Failures that are the collector's own, never the device's: they say nothing of it and are not fed to its
#: health (see `liveness.Liveness.discounts`); the device stays as it was.
COLLECTOR_FAILURES = frozenset({FailureKind.CONFIG})


class UnreadableData(MonitorError, ValueError):
    """What a device sent cannot be read (a broken packet, a payload or a value its profile does not fit).

    Also a ValueError, as the parsers it comes from raise; the collectors turn it into a `CollectError`
    of kind `bad_payload` or `snmp_decode` at their edge.
    """


class CollectError(MonitorError):
    """A device could not be heard or understood; `kind` is the machine-readable reason."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind.value}: {detail}")


@dataclass(frozen=True, slots=True)
class ProfileProblem:
    """One reason a profile file was refused: which file, which line (when known), what and why."""

    file: str
    line: int | None
    where: str
    reason: str

    def __str__(self) -> str:
        line = f":{self.line}" if self.line is not None else ""
        where = f" {self.where}:" if self.where else ""
        return f"{self.file}{line}:{where} {self.reason}"


class ProfileError(MonitorError):
    """Device profiles refused at load; `problems` holds every problem found, not just the first."""

    def __init__(self, problems: Iterable[ProfileProblem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in device profiles:\n  {lines}")


class DatabaseAway(MonitorError):
    """The database could not take the observations now; they are held for the next flush.

    The collector's trouble, never the devices': none of them is declared down for it.
    """


class UnknownProfile(NotFound):
    """A device names a profile that is not loaded."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.known = sorted(known)
        super().__init__("device profile", name)
        self.args = (f"no device profile named {name!r}; known profiles: {', '.join(self.known) or '(none)'}",)

    def __str__(self) -> str:
        return str(self.args[0])


__all__ = ["COLLECTOR_FAILURES", "CollectError", "FailureKind", "ProfileError", "ProfileProblem", "UnknownProfile"]
