"""Streaming a long table as a file to save (CSV or XLSX), for the export routes of the lists.

CSV goes out as it is made: each chunk is produced when the client is ready for it, in a worker thread
(Starlette iterates a plain iterator in the thread pool), so the rows behind it are read from the
database only then. The first chunk is made before the answer starts, in the route's own thread, so that
a database away or a refused filter is still answered as a problem (503, 404) rather than a cut-off file.

XLSX cannot be sent before it is finished (a zip file's directory is written last): the workbook is
written in constant memory into an anonymous temporary file (it has no name, so nothing is left behind
even if the process dies), then that file is streamed and closed, which deletes it.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any, Literal

from fastapi.responses import StreamingResponse

from monitor.i18n import to_local
from monitor.tabular import MEDIA_TYPES, Cell, csv_chunks, write_xlsx

ExportFormat = Literal["csv", "xlsx"]
FILE_CHUNK_BYTES = 64 * 1024

#: The 200 answer of an export route, for OpenAPI.
EXPORT_CONTENT: dict[str, Any] = {
    "text/csv": {"schema": {"type": "string"}},
    MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
}


def _file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := file.read(FILE_CHUNK_BYTES):
            yield chunk
    finally:
        file.close()  # an anonymous temporary file: closing it deletes it


def file_name(stem: str, fmt: ExportFormat, at: datetime) -> str:
    """An ASCII file name for Content-Disposition: `tickets-20261206-1032.csv` (local time)."""
    return f"{stem}-{to_local(at).strftime('%Y%m%d-%H%M')}.{fmt}"


def table_response(
    fmt: ExportFormat,
    name: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    sheet_name: str,
    widths: Sequence[int] = (),
) -> StreamingResponse:
    """The table as a file to save, streamed. Call it from a route's worker thread: the first CSV chunk, or
    the whole workbook, is made here."""
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "csv":
        chunks = csv_chunks(header, rows)
        first = next(chunks)
        return StreamingResponse(itertools.chain([first], chunks), media_type=MEDIA_TYPES["csv"], headers=headers)
    file = tempfile.TemporaryFile()  # noqa: SIM115 -- handed to the response, which closes it when sent
    try:
        write_xlsx(file, header, rows, sheet_name=sheet_name, widths=widths)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return StreamingResponse(_file_chunks(file), media_type=MEDIA_TYPES["xlsx"], headers=headers)
