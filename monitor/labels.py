"""Choice sets that carry their Vietnamese and English labels with their value.

One source drives API output, UI badges, notifications and reports, as NetBox's choice sets do.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self


class LabelledEnum(StrEnum):
    """A string enum whose members carry a Vietnamese label (first) and an English one."""

    label_vi: str
    label_en: str

    def __new__(cls, value: str, label_vi: str = "", label_en: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label_vi = label_vi or value
        member.label_en = label_en or value
        return member

    def label(self, language: str = "vi") -> str:
        """The label for people, Vietnamese unless English is asked for."""
        return self.label_en if language == "en" else self.label_vi

    @classmethod
    def choices(cls) -> list[dict[str, Any]]:
        """Every member as `{value, label_vi, label_en}`, for forms and API discovery."""
        return [{"value": m.value, "label_vi": m.label_vi, "label_en": m.label_en} for m in cls]
