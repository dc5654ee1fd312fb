"""Fleet files: the inventory's devices as CSV or YAML, read and validated whole, then upserted.

Columns (CSV header, or keys of each YAML item):

    code          unique device code, letters, digits, `-`, `_`, `.` (required)
    name          a name people recognise (required)
    kind          radio_cluster | bulletin_board | station_controller | gateway (required)
    commune_code  official code of the commune where it stands (required)
    parent_code   code of the gateway or station controller it depends on, in the same commune
    protocol      http | snmp | mqtt | heartbeat (required)
    address       http: URL or host; snmp: host; mqtt: topic; heartbeat: empty (the device pushes)
    port          1-65535; empty for the protocol's default
    profile       device profile name (required)
    interval_s    seconds between polls or expected heartbeats, 10-86400 (required)
    lat, lon      coordinates (both or neither)
    installed_on  install date, YYYY-MM-DD or dd/mm/yyyy
    vendor, model, active (true/false), credentials (SNMP community; write-only, never exported)

A file is refused whole if any row is bad: every problem is reported with its line and field.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from monitor.errors import FleetFileError, Problem
from monitor.i18n import local_today
from monitor.inventory.choices import DeviceKind, Protocol

REQUIRED_COLUMNS = ("code", "name", "kind", "commune_code", "protocol", "profile", "interval_s")
COLUMNS = (
    "code",
    "name",
    "kind",
    "commune_code",
    "parent_code",
    "protocol",
    "address",
    "port",
    "profile",
    "interval_s",
    "lat",
    "lon",
    "installed_on",
)
OPTIONAL_COLUMNS = ("vendor", "model", "active", "credentials")
EXPORT_COLUMNS = (*COLUMNS, "vendor", "model", "active")
PARENT_KINDS = frozenset({DeviceKind.GATEWAY, DeviceKind.STATION_CONTROLLER})
MIN_INTERVAL_S, MAX_INTERVAL_S = 10, 86_400

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PROFILE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_TRUE = {"true", "yes", "1", "có", "co"}
_FALSE = {"false", "no", "0", "không", "khong"}


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One device as a fleet file describes it, already validated."""

    line: int
    code: str
    name: str
    kind: DeviceKind
    commune_code: str
    parent_code: str | None
    protocol: Protocol
    address: str
    port: int | None
    profile: str
    interval_s: int
    lat: float | None
    lon: float | None
    installed_on: date | None
    vendor: str = ""
    model: str = ""
    active: bool = True
    credentials: str | None = None


# --- reading ------------------------------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FleetFileError(
            f"{source} is not UTF-8 text",
            [Problem("file", f"byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8", line)],
        ) from exc
    return text.removeprefix("\ufeff")  # a BOM, as spreadsheet programs write


def read_csv_rows(text: str, source: str) -> list[tuple[int, dict[str, str]]]:
    """CSV text to (line, raw values) pairs; refuses unknown or missing columns."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise FleetFileError(f"{source} is empty", [Problem("file", "no header line", 1)])
    _check_columns(header, source)
    reader.fieldnames = header
    rows = []
    for raw in reader:
        line = reader.line_num
        if None in raw:
            rows.append((line, {"__extra__": "more values than columns in the header"}))
            continue
        values = {k: (v or "").strip() for k, v in raw.items()}
        if any(values.values()):
            rows.append((line, values))
    return rows


class _LineLoader(yaml.SafeLoader):
    """A safe YAML loader that remembers the line of each mapping."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = {str(key): value for key, value in loader.construct_mapping(node, deep=True).items()}
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def read_yaml_rows(text: str, source: str) -> list[tuple[int, dict[str, str]]]:
    """YAML text (a list of devices, or `devices:` holding one) to (line, raw values) pairs."""
    try:
        document = yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise FleetFileError(f"{source} is not valid YAML", [Problem("file", str(exc).splitlines()[0], line)]) from exc
    if isinstance(document, dict) and "devices" in document:
        document = document["devices"]
    if not isinstance(document, list):
        raise FleetFileError(f"{source} holds no device list", [Problem("file", "expected a list of devices", 1)])
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[Problem] = []
    columns: set[str] = set()
    for item in document:
        if not isinstance(item, dict):
            problems.append(Problem("row", "each device must be a mapping of column: value", None))
            continue
        line = int(item.pop("__line__"))
        columns.update(str(k) for k in item)
        rows.append((line, {str(k): "" if v is None else str(v).strip() for k, v in item.items()}))
    if problems:
        raise FleetFileError(f"{source} has malformed devices", problems)
    unknown = sorted(columns - set(COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        raise FleetFileError(
            f"{source} has unknown columns",
            [
                Problem(col, f"unknown column; expected {', '.join(COLUMNS + OPTIONAL_COLUMNS)}", None)
                for col in unknown
            ],
        )
    return rows


def _check_columns(header: list[str], source: str) -> None:
    problems = [
        Problem(col, f"unknown column; expected {', '.join(COLUMNS + OPTIONAL_COLUMNS)}", 1)
        for col in header
        if col not in COLUMNS and col not in OPTIONAL_COLUMNS
    ]
    problems += [Problem(col, "required column is missing", 1) for col in REQUIRED_COLUMNS if col not in header]
    duplicated = {col for col in header if header.count(col) > 1}
    problems += [Problem(col, "column appears more than once", 1) for col in sorted(duplicated)]
    if problems:
        raise FleetFileError(f"{source} has a bad header", problems)


def read_fleet_file(path: Path, file_format: Literal["csv", "yaml"] | None = None) -> list[tuple[int, dict[str, str]]]:
    """Read a fleet file into raw rows; the format follows the extension unless given."""
    return read_fleet_bytes(path.read_bytes(), str(path), file_format)


def read_fleet_bytes(
    data: bytes, name: str, file_format: Literal["csv", "yaml"] | None = None
) -> list[tuple[int, dict[str, str]]]:
    """Read an uploaded fleet file's bytes into raw rows; the format follows the name unless given."""
    fmt = file_format or ("yaml" if name.lower().endswith((".yaml", ".yml")) else "csv")
    text = _decode(data, name)
    return read_yaml_rows(text, name) if fmt == "yaml" else read_csv_rows(text, name)


# --- validating one row -------------------------------------------------------------------------


def _parse_int(value: str, field: str, problems: list[Problem], line: int, low: int, high: int) -> int | None:
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        problems.append(Problem(field, f"{value!r} is not a whole number", line))
        return None
    if not low <= number <= high:
        problems.append(Problem(field, f"{number} is outside {low}-{high}", line))
        return None
    return number


def _parse_float(value: str, field: str, problems: list[Problem], line: int, limit: float) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        problems.append(Problem(field, f"{value!r} is not a number", line))
        return None
    if not -limit <= number <= limit:
        problems.append(Problem(field, f"{number} is outside -{limit:g}..{limit:g}", line))
        return None
    return number


def _parse_date(value: str, problems: list[Problem], line: int, today: date) -> date | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            parsed = datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar date, no time
        except ValueError:
            continue
        if parsed > today:
            problems.append(Problem("installed_on", f"{value} is in the future", line))
            return None
        return parsed
    problems.append(Problem("installed_on", f"{value!r} is not a date (YYYY-MM-DD or dd/mm/yyyy)", line))
    return None


def _is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
        return True
    except ValueError:
        return bool(_HOSTNAME.match(value)) and not value.replace(".", "").isdigit()


def _address_problem(protocol: Protocol, address: str, port: int | None) -> str | None:
    """Why `address` cannot be used with `protocol`, or None when it can."""
    if protocol is Protocol.HTTP:
        if "://" not in address:
            return None if _is_host(address) else f"{address!r} is neither an http(s) URL nor a host"
        try:
            parts = urlsplit(address)
            url_port = parts.port
        except ValueError as exc:
            return f"{address!r} is not a valid URL: {exc}"
        if parts.scheme not in {"http", "https"} or not parts.hostname or not _is_host(parts.hostname):
            return f"{address!r} is not an http(s) URL with a host"
        if parts.username or parts.password:
            return "credentials do not belong in the URL; use the credentials column"
        if url_port and port and url_port != port:
            return f"the URL says port {url_port} but the port column says {port}"
        return None
    if protocol is Protocol.SNMP:
        return None if _is_host(address) else f"{address!r} is not an IP address or host name"
    if protocol is Protocol.MQTT:
        if not address:
            return "an MQTT device needs the topic it publishes to"
        if any(ch in address for ch in "+#\x00") or address.startswith("$"):
            return f"{address!r} is not a topic a device can publish to (no wildcards, no $ prefix)"
        return None
    if address:
        return "a heartbeat device pushes to the service: leave the address empty"
    return None


def parse_row(line: int, raw: Mapping[str, str], today: date) -> tuple[FleetRow | None, list[Problem]]:
    """Validate one row on its own (cross-row and database checks come after)."""
    problems: list[Problem] = []
    if "__extra__" in raw:
        return None, [Problem("row", raw["__extra__"], line)]
    for field in REQUIRED_COLUMNS:
        if not raw.get(field):
            problems.append(Problem(field, "required", line))
    code = raw.get("code", "")
    if code and not _CODE.match(code):
        problems.append(Problem("code", f"{code!r}: use 1-64 letters, digits, '-', '_' or '.'", line))
    name = raw.get("name", "")
    if len(name) > 200:
        problems.append(Problem("name", "longer than 200 characters", line))
    kind: DeviceKind | None = None
    if raw.get("kind"):
        try:
            kind = DeviceKind(raw["kind"])
        except ValueError:
            problems.append(Problem("kind", f"unknown kind {raw['kind']!r}; expected {', '.join(DeviceKind)}", line))
    protocol: Protocol | None = None
    if raw.get("protocol"):
        try:
            protocol = Protocol(raw["protocol"])
        except ValueError:
            problems.append(
                Problem("protocol", f"unknown protocol {raw['protocol']!r}; expected {', '.join(Protocol)}", line)
            )
    profile = raw.get("profile", "")
    if profile and not _PROFILE.match(profile):
        problems.append(Problem("profile", f"{profile!r}: use lower-case letters, digits, '-', '_' or '.'", line))
    port = _parse_int(raw.get("port", ""), "port", problems, line, 1, 65_535)
    interval = _parse_int(raw.get("interval_s", ""), "interval_s", problems, line, MIN_INTERVAL_S, MAX_INTERVAL_S)
    lat = _parse_float(raw.get("lat", ""), "lat", problems, line, 90)
    lon = _parse_float(raw.get("lon", ""), "lon", problems, line, 180)
    if (raw.get("lat", "") == "") != (raw.get("lon", "") == ""):
        problems.append(Problem("lat" if not raw.get("lat") else "lon", "give both lat and lon, or neither", line))
    installed_on = _parse_date(raw.get("installed_on", ""), problems, line, today)
    address = raw.get("address", "")
    if len(address) > 500:
        problems.append(Problem("address", "longer than 500 characters", line))
    elif protocol is not None:
        reason = _address_problem(protocol, address, port)
        if reason:
            problems.append(Problem("address", reason, line))
    active_text = raw.get("active", "").lower()
    if active_text and active_text not in _TRUE | _FALSE:
        problems.append(Problem("active", f"{raw['active']!r} is not true or false", line))
    credentials = raw.get("credentials") or None
    if credentials is not None and len(credentials) > 500:
        problems.append(Problem("credentials", "longer than 500 characters", line))
    if problems or kind is None or protocol is None or interval is None:
        return None, problems
    parent = raw.get("parent_code") or None
    if parent == code:
        return None, [Problem("parent_code", "a device cannot be its own parent", line)]
    return (
        FleetRow(
            line=line,
            code=code,
            name=name,
            kind=kind,
            commune_code=raw["commune_code"],
            parent_code=parent,
            protocol=protocol,
            address=address,
            port=port,
            profile=profile,
            interval_s=interval,
            lat=lat,
            lon=lon,
            installed_on=installed_on,
            vendor=raw.get("vendor", "")[:100],
            model=raw.get("model", "")[:100],
            active=active_text not in _FALSE,
            credentials=credentials,
        ),
        [],
    )


def people_today() -> date:
    """Today's date where the people are (Asia/Ho_Chi_Minh)."""
    return local_today()


# --- writing ------------------------------------------------------------------------------------


def _export_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def write_fleet(records: Iterable[Mapping[str, Any]], file_format: Literal["csv", "yaml"]) -> str:
    """Devices as fleet-file text that imports back to the same inventory (secrets left out)."""
    rows = [{col: _export_value(rec.get(col)) for col in EXPORT_COLUMNS} for rec in records]
    if file_format == "yaml":
        items = [{k: v for k, v in row.items() if v != ""} for row in rows]
        return yaml.safe_dump({"devices": items}, allow_unicode=True, sort_keys=False)
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
