"""The bounds of what the database can hold, for every integer the API takes in (one definition).

Every id column is a 32-bit INTEGER on PostgreSQL (see monitor/migrations/versions/): an id beyond
2**31 - 1 cannot exist, and asking for one must be a 422, not a 500 from the driver ("integer out of
range", or SQLite's OverflowError). Amounts of money are BIGINT but bounded well below it; years are a sane
range (a datetime cannot be built for year 0 or 10000). Pydantic's Field works for bodies here; the web
layer's Path/Query aliases (monitor.web.params) use the same numbers.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER: every id column, counts, durations
INT64_MAX = 2**63 - 1  # PostgreSQL BIGINT
MAX_OFFSET = 1_000_000  # paging deeper than this is not browsing: narrow the filter
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_VND = 10**12  # one repair never costs a trillion đồng; well within BIGINT, and sums of many too
# No control characters but tab/newline/CR (NUL above all: PostgreSQL cannot store it in text).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

RowId = Annotated[int, Field(ge=1, le=INT32_MAX, description="an id (1 .. 2**31-1)")]
Vnd = Annotated[int, Field(ge=0, le=MAX_VND, description="whole đồng")]
