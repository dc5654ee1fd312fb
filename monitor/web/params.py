"""Path and query parameters with the bounds the database can hold (monitor.bounds), for every router."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator

from monitor.bounds import INT32_MAX, MAX_OFFSET, MAX_YEAR, MIN_YEAR

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="an id (1 .. 2**31-1)")]
IdQuery = Annotated[int | None, Query(ge=1, le=INT32_MAX, description="an id (1 .. 2**31-1)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"rows to skip (at most {MAX_OFFSET:,})")]
YearPath = Annotated[int, Path(ge=MIN_YEAR, le=MAX_YEAR, description=f"a year, {MIN_YEAR}..{MAX_YEAR}")]


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: Any) -> Any:
    """Only YYYY-MM-DD: pydantic would also read `0` or `1700000000` as a day (seconds since 1970)."""
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("a day as YYYY-MM-DD")
    return value


#: A day in a query, written YYYY-MM-DD (Vietnam time is the caller's to mean).
Day = Annotated[date, BeforeValidator(_iso_day)]
