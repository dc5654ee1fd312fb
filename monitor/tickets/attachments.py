"""Photo attachments of tickets: size cap, type decided by the bytes (never by the name or the claimed type).

Files live under `{data_dir}/attachments/{ticket code}/{uuid}.{ext}`, written whole then renamed, so a
reader never sees half a photo; the row keeps the path relative to the data folder and the SHA-256.
If the transaction is rolled back after the file was written, the file stays as an orphan:
`orphan_files` compares the folder with the rows and `monitor tickets clean-attachments` removes them.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlmodel import Session, col, select

from monitor.errors import InvalidInput, Problem
from monitor.text import uploaded_name
from monitor.tickets.choices import EventKind
from monitor.tickets.models import TicketAttachment
from monitor.tickets.store import begin_write, find_ticket, record_event

MAX_BYTES_DEFAULT = 5 * 1024 * 1024
_SAFE_CODE = re.compile(r"^[A-Z]{1,8}-\d{4}-\d{6,}$")


def sniff_image(data: bytes) -> tuple[str, str] | None:
    """`(content type, extension)` of a JPEG, PNG or WebP image, read from its first bytes; None otherwise."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        return "image/png", "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and data[12:15] == b"VP8":
        return "image/webp", "webp"
    return None


def _describe(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<")):
        return "HTML or XML text"
    if head.startswith(b"%pdf"):
        return "a PDF document"
    if head.startswith(b"pk\x03\x04"):
        return "a ZIP archive (or an office document)"
    if head.startswith(b"gif8"):
        return "a GIF image"
    return "not a JPEG, PNG or WebP image"


def save_attachment(
    code: str,
    filename: str,
    data: bytes,
    *,
    content_type_claimed: str | None,
    data_dir: Path,
    max_bytes: int = MAX_BYTES_DEFAULT,
    session: Session,
    actor: int | None,
    now: datetime,
) -> TicketAttachment:
    """Store a photo of the ticket `code`, with an `attachment` event; returns the row.

    Refused with InvalidInput when its name holds a NUL character, when empty, larger than `max_bytes`, or
    not a JPEG, PNG or WebP image by its content, whatever its name and claimed type say (an HTML page named
    photo.jpg is refused).
    """
    if "\x00" in filename:  # PostgreSQL cannot store it, and no person's file name holds one
        raise InvalidInput("attachment refused", [Problem("file", "a NUL character is not allowed in the file name")])
    if not data:
        raise InvalidInput("attachment refused", [Problem("file", "the file is empty")])
    if len(data) > max_bytes:
        reason = f"the file has {len(data):,} bytes, more than the {max_bytes:,} allowed"
        raise InvalidInput("attachment refused", [Problem("file", reason)])
    sniffed = sniff_image(data)
    if sniffed is None:
        claimed = f" (sent as {content_type_claimed})" if content_type_claimed else ""
        reason = f"{_describe(data)}{claimed}: only JPEG, PNG and WebP photos are accepted"
        raise InvalidInput("attachment refused", [Problem("file", reason)])
    content_type, extension = sniffed
    begin_write(session)
    ticket = find_ticket(code, session=session, for_update=True)
    if not _SAFE_CODE.match(ticket.code):  # the code becomes a folder name: never a path trick
        raise InvalidInput("attachment refused", [Problem("code", f"unexpected ticket code {ticket.code!r}")])
    assert ticket.id is not None

    relative = PurePosixPath("attachments", ticket.code, f"{uuid.uuid4().hex}.{extension}")
    target = Path(data_dir) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, target)

    attachment = TicketAttachment(
        ticket_id=ticket.id,
        path=str(relative),
        original_filename=uploaded_name(filename, "photo"),
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=actor,
        uploaded_at=now,
    )
    session.add(attachment)
    record_event(
        session,
        ticket,
        EventKind.ATTACHMENT,
        at=now,
        actor=actor,
        to_value=attachment.original_filename,
        note=f"{content_type}, {len(data):,} bytes",
    )
    return attachment


def orphan_files(data_dir: Path, *, session: Session, min_age_s: float = 3600.0) -> list[Path]:
    """Files under `{data_dir}/attachments` that no attachment row names, older than `min_age_s`.

    Left by uploads whose transaction rolled back (and `.part` files of writes cut short). The age keeps an
    upload that is being committed right now out of the list.
    """
    root = Path(data_dir) / "attachments"
    if not root.is_dir():
        return []
    known = set(session.exec(select(col(TicketAttachment.path))))
    deadline = time.time() - min_age_s
    orphans = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(data_dir).as_posix()
        if relative not in known and path.stat().st_mtime < deadline:
            orphans.append(path)
    return orphans
