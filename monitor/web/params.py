"""Path and query parameters with the bounds the database can hold (monitor.bounds), for every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from monitor.bounds import INT32_MAX, MAX_OFFSET, MAX_YEAR, MIN_YEAR

IdPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="an id (1 .. 2**31-1)")]
IdQuery = Annotated[int | None, Query(ge=1, le=INT32_MAX, description="an id (1 .. 2**31-1)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description=f"rows to skip (at most {MAX_OFFSET:,})")]
YearPath = Annotated[int, Path(ge=MIN_YEAR, le=MAX_YEAR, description=f"a year, {MIN_YEAR}..{MAX_YEAR}")]
