"""The lines every benchmark writes with `--json FILE` for `run_all.py`'s one table.

Each benchmark keeps its own detailed figures in its JSON file and adds, under the key `summary`:

    {"benchmark": "bench_api_pg.py", "conditions": "PostgreSQL, 1,000,000 tickets, ...",
     "figures": [{"what": ..., "figure": ..., "reference": ..., "target": ..., "met": true | false | null}]}

`figure` is the service's figure with its unit; `reference` what it is compared with, measured in the same
run ("" when there is none); `target` the issue's target ("" when none was set); `met` is null when there is
no target, or the target does not apply at the size that ran.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One line of the table: a figure beside its reference of the same run and its target."""

    what: str
    figure: str
    reference: str = ""
    target: str = ""
    met: bool | None = None


def summary(benchmark: str, conditions: str, figures: list[Figure]) -> dict[str, Any]:
    """The `summary` entry of a benchmark's JSON file."""
    return {"benchmark": benchmark, "conditions": conditions, "figures": [asdict(f) for f in figures]}


def write_json(path: Path, benchmark: str, conditions: str, figures: list[Figure], details: dict[str, Any]) -> None:
    """Write `details` (the benchmark's own figures, as its file always held them) with `summary` beside them."""
    document = {**details, "summary": summary(benchmark, conditions, figures)}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
