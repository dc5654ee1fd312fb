"""Device profiles: how one vendor's JSON, SNMP objects or MQTT payload become readings and faults.

A profile is a YAML file (like a Prometheus exporter module or a Zabbix template); adding a
vendor is writing one, not code. The built-in ones (`profiles/*.yaml`, next to this module) map
the formats of docs/vendor-formats.md; an operator's folder may add more or replace a built-in
of the same name.

    name: vietloa-ip200-http        # letters, digits, . _ -; the inventory's `profile` column
    vendor: VietLoa
    model: IP-200
    protocols: [http]               # http, mqtt, heartbeat (JSON) or snmp; snmp goes alone
    http: {path: /status}           # http only; /status when left out
    format: fields                  # or `observation`: the payload is {"readings": {...}, "faults": [...]}
    readings:                       # reading name (see readings.READINGS) -> where it comes from
      uptime_s: {field: uptime}                 # JSON: a dotted path (digits index lists)
      power: {field: power.source, map: {AC: mains, BAT: battery}}
      temperature_c: {field: temp, type: float}
      content_age_s: {field: status.content.updated_at, age_from_epoch: true}
      # snmp profiles: {oid: 1.3.6.1.2.1.1.3.0, scale: 0.01}
    faults:                         # a fault code and a rule on a reading, or on a raw field / OID
      - {fault: power_loss, reading: power, equals: battery}
      - {fault: speaker_line_fault, field: audio.line, in: [OPEN, SHORT]}
      - {fault: low_signal, reading: signal_dbm, below: -105}      # strictly below
      - {fault: overheat, reading: temperature_c, above: 70}       # strictly above

A reading mapping takes `field` or `oid` (one), and optionally `type` (int, float or str: a
strict conversion, never from a string to a number), `map` (raw value -> reading value), `scale`
(a factor for numbers), `age_from_epoch` (Unix seconds -> age at the observation time) and
`required` (its absence makes the payload bad). A bad profile is refused at load with its file,
line and reason (`ProfileError`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import ValidationError

from monitor.collectors.errors import ProfileError, ProfileProblem, UnknownProfile
from monitor.collectors.profile_schema import DEFAULT_HTTP_PATH, ProfileModel, compile_profile, pydantic_problems
from monitor.collectors.profile_types import FaultRule, Profile, ReadingMap
from monitor.collectors.profile_yaml import load_yaml

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).with_name("profiles")


class ProfileRegistry:
    """The profiles in use, by name."""

    def __init__(self, profiles: Mapping[str, Profile]) -> None:
        self._profiles = dict(profiles)

    def get(self, name: str) -> Profile:
        """The profile called `name`; `UnknownProfile` (listing the known ones) when there is none."""
        try:
            return self._profiles[name]
        except KeyError:
            raise UnknownProfile(name, self._profiles) from None

    def names(self) -> list[str]:
        """Every profile name, sorted."""
        return sorted(self._profiles)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._profiles)


def parse_profile(text: str, file: str) -> Profile:
    """One profile from YAML text; `ProfileError` lists every problem with `file` and its line."""
    data, lines, problems = load_yaml(text, file)
    if problems and data is None:
        raise ProfileError(problems)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ProfileError([*problems, ProfileProblem(file, lines.line(()), "", f"a profile is a mapping, got {got}")])
    try:
        model = ProfileModel.model_validate(data)
    except ValidationError as exc:
        raise ProfileError([*problems, *pydantic_problems(exc, lines, file)]) from None
    profile, more = compile_profile(model, lines, file)
    problems += more
    if problems or profile is None:
        raise ProfileError(problems)
    return profile


def load_profile_file(path: Path) -> Profile:
    """One profile file (UTF-8 YAML)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            [ProfileProblem(str(path), None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")]
        ) from None
    except OSError as exc:
        raise ProfileError([ProfileProblem(str(path), None, "", f"cannot read: {exc.strerror or exc}")]) from None
    return parse_profile(text.removeprefix("\ufeff"), str(path))


def load_profile_dir(folder: Path) -> dict[str, Profile]:
    """Every `*.yaml` / `*.yml` profile of `folder`, by name; all problems of all files in one `ProfileError`."""
    if not folder.is_dir():
        raise ProfileError([ProfileProblem(str(folder), None, "", "the profile folder does not exist")])
    profiles: dict[str, Profile] = {}
    problems: list[ProfileProblem] = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            profile = load_profile_file(path)
        except ProfileError as exc:
            problems += exc.problems
            continue
        first = profiles.get(profile.name)
        if first is not None:
            problems.append(
                ProfileProblem(
                    profile.file,
                    profile.line,
                    "name",
                    f"duplicate profile name {profile.name!r}, already defined in {first.file}:{first.line}",
                )
            )
            continue
        profiles[profile.name] = profile
    if problems:
        raise ProfileError(problems)
    return profiles


def load_profiles(extra_dir: Path | None = None) -> ProfileRegistry:
    """The built-in profiles, plus those of the operator's folder `extra_dir`, which replace built-ins of their name."""
    problems: list[ProfileProblem] = []
    profiles: dict[str, Profile] = {}
    extra: dict[str, Profile] = {}
    try:
        profiles = load_profile_dir(BUILTIN_DIR)
    except ProfileError as exc:
        problems += exc.problems
    if extra_dir is not None:
        try:
            extra = load_profile_dir(extra_dir)
        except ProfileError as exc:
            problems += exc.problems
    if problems:
        raise ProfileError(problems)
    for name, profile in extra.items():
        if name in profiles:
            log.warning(
                "device profile %r from %s replaces the built-in one (%s)", name, profile.file, profiles[name].file
            )
        profiles[name] = profile
    log.info("loaded %d device profiles (%d from %s)", len(profiles), len(extra), extra_dir or "no operator folder")
    return ProfileRegistry(profiles)


__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_HTTP_PATH",
    "FaultRule",
    "Profile",
    "ProfileRegistry",
    "ReadingMap",
    "load_profile_dir",
    "load_profile_file",
    "load_profiles",
    "parse_profile",
]
