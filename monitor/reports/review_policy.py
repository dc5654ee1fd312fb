"""What the yearly review judges by: when a device is proposed for replacement, and the unit costs of next year's
budget estimate (a YAML file, `examples/report-costs.yaml`; every key optional, checked on loading).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from monitor.errors import ConfigError
from monitor.inventory.choices import DeviceKind
from monitor.labels import LabelledEnum

if TYPE_CHECKING:
    from monitor.config import Settings

KINDS = tuple(kind.value for kind in DeviceKind)


class ReplaceReason(LabelledEnum):
    """Why a device is proposed for replacement in next year's budget."""

    AGE = "age", "Quá niên hạn sử dụng", "Older than its service life"
    REPAIRS = "repairs", "Sửa chữa nhiều lần", "Repaired too often"
    AVAILABILITY = "availability", "Tỷ lệ hoạt động thấp", "Low availability"


#: The defaults, equal to examples/report-costs.yaml (a test keeps them in step).
DEFAULT_INSPECTION_VND: Mapping[str, int] = {
    "radio_cluster": 400_000,
    "bulletin_board": 800_000,
    "station_controller": 500_000,
    "gateway": 300_000,
}
DEFAULT_REPLACEMENT_VND: Mapping[str, int] = {
    "radio_cluster": 25_000_000,
    "bulletin_board": 120_000_000,
    "station_controller": 35_000_000,
    "gateway": 4_500_000,
}
DEFAULT_REPAIR_FALLBACK_VND = 1_500_000
DEFAULT_INSPECTIONS_PER_YEAR: Mapping[str, int] = {
    "radio_cluster": 1,
    "bulletin_board": 4,
    "station_controller": 2,
    "gateway": 1,
}
MAX_UNIT_VND = 10**12  # as a ticket's cost: anything above is a typing error
MAX_INSPECTIONS_PER_YEAR = 366


@dataclass(frozen=True, slots=True)
class UnitCosts:
    """Unit costs in VND for next year's estimate, per kind of device (loaded from a YAML file)."""

    inspection_vnd: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_INSPECTION_VND))
    replacement_vnd: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REPLACEMENT_VND))
    repair_fallback_vnd: int = DEFAULT_REPAIR_FALLBACK_VND
    inspections_per_year: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_INSPECTIONS_PER_YEAR))


_PER_KIND = {
    "inspection_vnd": MAX_UNIT_VND,
    "replacement_vnd": MAX_UNIT_VND,
    "inspections_per_year": MAX_INSPECTIONS_PER_YEAR,
}


def _whole(value: Any, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most


def load_unit_costs(path: Path | None) -> UnitCosts:
    """The unit costs of `path` (None: the defaults); a kind or key the file leaves out keeps its default.

    Raises ConfigError naming the file and the bad key: an unreadable file, an unknown key or kind, a value
    that is not a whole, non-negative number."""
    if path is None:
        return UnitCosts()
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"unit costs {path}: {exc}") from exc
    if document is None:
        return UnitCosts()
    if not isinstance(document, dict):
        raise ConfigError(f"unit costs {path}: expected a mapping of {', '.join([*_PER_KIND, 'repair_fallback_vnd'])}")
    defaults = UnitCosts()
    values: dict[str, Any] = {}
    for key, value in document.items():
        if key == "repair_fallback_vnd":
            if not _whole(value, MAX_UNIT_VND):
                raise ConfigError(f"unit costs {path}: {key}: a whole number of đồng from 0 to {MAX_UNIT_VND:,}")
            values[key] = value
        elif key in _PER_KIND:
            if not isinstance(value, dict):
                raise ConfigError(f"unit costs {path}: {key}: a mapping of device kind to a number")
            merged = dict(getattr(defaults, key))
            for kind, amount in value.items():
                if kind not in KINDS:
                    raise ConfigError(
                        f"unit costs {path}: {key}.{kind}: unknown device kind; one of {', '.join(KINDS)}"
                    )
                if not _whole(amount, _PER_KIND[key]):
                    raise ConfigError(f"unit costs {path}: {key}.{kind}: a whole number from 0 to {_PER_KIND[key]:,}")
                merged[kind] = amount
            values[key] = merged
        else:
            known = ", ".join([*_PER_KIND, "repair_fallback_vnd"])
            raise ConfigError(f"unit costs {path}: unknown key {key!r}; known: {known}")
    return UnitCosts(**values)


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """When a device is proposed for replacement, and what next year's work costs."""

    replace_after_years: int = 8
    replace_after_repairs: int = 3
    replace_below_availability: float = 0.95
    costs: UnitCosts = field(default_factory=UnitCosts)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReviewPolicy:
        """The policy of the deployment's settings (`report_replace_*`, `report_costs_file`)."""
        return cls(
            replace_after_years=settings.report_replace_after_years,
            replace_after_repairs=settings.report_replace_after_repairs,
            replace_below_availability=settings.report_replace_below_availability,
            costs=load_unit_costs(settings.report_costs_file),
        )

    def reasons(self, age_years: float | None, repairs: int, availability: float | None) -> tuple[ReplaceReason, ...]:
        """Why a device with these figures should be replaced (empty: it should not)."""
        found = []
        if age_years is not None and age_years > self.replace_after_years:
            found.append(ReplaceReason.AGE)
        if repairs > self.replace_after_repairs:
            found.append(ReplaceReason.REPAIRS)
        if availability is not None and availability < self.replace_below_availability:
            found.append(ReplaceReason.AVAILABILITY)
        return tuple(found)
