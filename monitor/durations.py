"""Lengths of time in words, as people say them: "2 giờ 15 phút", "1 ngày 3 giờ", never "1 day, 0:00:00".

Pure, the standard library only, like `monitor.i18n` (where it may well move: it is how the service speaks).
"""

from __future__ import annotations

from datetime import timedelta

_UNITS = {
    "vi": (("ngày", "ngày"), ("giờ", "giờ"), ("phút", "phút")),
    "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes")),
}
_UNDER_A_MINUTE = {"vi": "dưới 1 phút", "en": "less than a minute"}


def format_duration(length: timedelta, language: str = "vi", *, parts: int = 2, days: bool = True) -> str:
    """`length` in days, hours and minutes, the largest `parts` units that are not zero, rounded down to the
    minute: "2 giờ 15 phút", "1 ngày 3 giờ"; under a minute, "dưới 1 phút". With `days=False` hours are
    not gathered into days ("24 giờ", as a policy's window is said). Vietnamese unless `language` is "en"
    ("2 hours 15 minutes"). A negative length is read as its size."""
    units = _UNITS["en" if language == "en" else "vi"]
    minutes = int(abs(length).total_seconds()) // 60
    hours = minutes // 60
    amounts = (hours // 24, hours % 24, minutes % 60) if days else (0, hours, minutes % 60)
    words = [
        f"{amount} {singular if amount == 1 else plural}"
        for amount, (singular, plural) in zip(amounts, units, strict=True)
        if amount
    ]
    if not words:
        return _UNDER_A_MINUTE["en" if language == "en" else "vi"]
    return " ".join(words[:parts])
