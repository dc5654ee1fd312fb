"""Photo attachments: accepted by their content (JPEG, PNG, WebP), refused when too big or disguised."""

from __future__ import annotations

import hashlib
import os
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from monitor.errors import InvalidInput, NotFound
from monitor.tickets import service
from monitor.tickets.attachments import orphan_files, sniff_image
from monitor.tickets.models import Ticket, TicketAttachment
from monitor.tickets.policy import TicketPolicy
from monitor.tickets.schemas import TicketAttachmentPublic
from tests.test_tickets_support import T0, cast, events, fleet, policy, report

__all__ = ["cast", "fleet", "policy"]  # fixtures, imported for pytest

MIB = 1024 * 1024


def png(width: int = 2, height: int = 2) -> bytes:
    """A real PNG: greyscale, every pixel mid-grey."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg() -> bytes:
    """A real baseline JPEG of one 8x8 grey block: every coefficient zero, one-code Huffman tables."""

    def segment(marker: int, body: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body

    one_code = bytes([1] + [0] * 15) + b"\x00"  # one code of length 1, for symbol 0
    return (
        b"\xff\xd8"
        + segment(0xDB, b"\x00" + b"\x01" * 64)  # quantisation table 0
        + segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00")  # 8x8, one component
        + segment(0xC4, b"\x00" + one_code)  # DC table 0: difference 0
        + segment(0xC4, b"\x10" + one_code)  # AC table 0: end of block
        + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
        + b"\x3f"  # DC "0", EOB "0", padded with ones
        + b"\xff\xd9"
    )


def webp() -> bytes:
    body = b"WEBPVP8L" + struct.pack("<I", 5) + b"\x2f\x00\x00\x00\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture
def ticket(session: Session, fleet: dict[str, int], policy: TicketPolicy) -> Ticket:
    outcome = service.open_or_update_ticket(report("06184-CL01", fleet), session=session, now=T0, policy=policy)
    session.commit()
    return outcome.ticket


def save(
    session: Session, ticket: Ticket, data_dir: Path, filename: str, data: bytes, claimed: str | None = None, **kw
) -> TicketAttachment:
    return service.save_attachment(
        ticket.code,
        filename,
        data,
        content_type_claimed=claimed,
        data_dir=data_dir,
        session=session,
        actor=None,
        now=T0,
        **kw,
    )


@pytest.mark.parametrize(
    ("make", "content_type", "extension"), [(png, "image/png", "png"), (jpeg, "image/jpeg", "jpg")]
)
def test_a_real_photo_is_stored_under_the_tickets_folder_with_its_hash(
    session: Session, ticket: Ticket, cast: dict[str, int], tmp_path: Path, make, content_type: str, extension: str
) -> None:
    data = make()
    attachment = service.save_attachment(
        ticket.code,
        "C:\\Users\\kt\\Ảnh cột loa.JPG",
        data,
        content_type_claimed="application/octet-stream",
        data_dir=tmp_path,
        session=session,
        actor=cast["tech_caoloc"],
        now=T0,
    )
    session.commit()
    assert attachment.path.startswith(f"attachments/{ticket.code}/") and attachment.path.endswith(f".{extension}")
    assert (tmp_path / attachment.path).read_bytes() == data
    assert (attachment.content_type, attachment.size_bytes) == (content_type, len(data))
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert attachment.original_filename == "Ảnh cột loa.JPG"
    assert events(session, ticket.id)[-1] == ("attachment", None, "Ảnh cột loa.JPG", cast["tech_caoloc"])
    assert [a.id for a in service.attachments(ticket.code, session=session)] == [attachment.id]
    assert TicketAttachmentPublic.build(attachment).content_type == content_type


def test_a_webp_photo_is_recognised() -> None:
    assert sniff_image(webp()) == ("image/webp", "webp")


def test_a_photo_over_the_limit_is_refused_and_nothing_is_written(
    session: Session, ticket: Ticket, tmp_path: Path
) -> None:
    too_big = png() + b"\x00" * (5 * MIB)
    with pytest.raises(InvalidInput) as caught:
        save(session, ticket, tmp_path, "big.png", too_big, "image/png")
    assert "more than the 5,242,880 allowed" in str(caught.value.problems[0])
    with pytest.raises(InvalidInput):
        save(session, ticket, tmp_path, "small.png", png(), "image/png", max_bytes=10)
    assert not (tmp_path / "attachments").exists()
    assert session.exec(select(TicketAttachment)).all() == []


def test_an_html_page_named_photo_jpg_is_refused_by_its_content_and_nothing_is_written(
    session: Session, ticket: Ticket, tmp_path: Path
) -> None:
    page = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    with pytest.raises(InvalidInput) as caught:
        save(session, ticket, tmp_path, "photo.jpg", page, "image/jpeg")
    [problem] = caught.value.problems
    assert problem.field == "file"
    assert problem.reason == "HTML or XML text (sent as image/jpeg): only JPEG, PNG and WebP photos are accepted"
    assert not (tmp_path / "attachments").exists()
    assert session.exec(select(TicketAttachment)).all() == []


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (b"%PDF-1.7\n1 0 obj\n", "a PDF document"),
        (b"GIF89a\x01\x00\x01\x00", "a GIF image"),
        (b"PK\x03\x04\x14\x00", "a ZIP archive (or an office document)"),
        (b"\x89PNG\r\n\x1a\nnot really", "not a JPEG, PNG or WebP image"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "not a JPEG, PNG or WebP image"),
    ],
)
def test_other_files_disguised_as_photos_are_refused_before_the_database_is_touched(
    tmp_path: Path, data: bytes, described: str
) -> None:
    no_database: Any = None  # refused on content alone: the session is never used
    with pytest.raises(InvalidInput) as caught:
        service.save_attachment(
            "LS-2026-000001",
            "photo.jpg",
            data,
            content_type_claimed=None,
            data_dir=tmp_path,
            session=no_database,
            actor=None,
            now=T0,
        )
    assert caught.value.problems[0].reason == f"{described}: only JPEG, PNG and WebP photos are accepted"
    assert sniff_image(data) is None


def test_an_empty_file_or_an_unknown_ticket_is_refused(session: Session, ticket: Ticket, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="attachment refused"):
        save(session, ticket, tmp_path, "empty.jpg", b"")
    with pytest.raises(NotFound):
        service.save_attachment(
            "LS-2026-999999",
            "a.png",
            png(),
            content_type_claimed=None,
            data_dir=tmp_path,
            session=session,
            actor=None,
            now=T0,
        )


def test_files_no_ticket_refers_to_are_found_once_old_enough_and_cleaned_by_the_cli(
    session: Session, ticket: Ticket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = save(session, ticket, tmp_path, "cột loa.png", png())
    session.commit()
    folder = tmp_path / "attachments" / ticket.code
    rolled_back = folder / "0123456789abcdef.png"  # an upload whose transaction was rolled back
    rolled_back.write_bytes(png())
    cut_short = folder / "fedcba9876543210.part"
    cut_short.write_bytes(b"\xff\xd8\xff")
    fresh = folder / "a-upload-being-committed.jpg"
    fresh.write_bytes(jpeg())
    two_hours_ago = time.time() - 7200
    for path in (tmp_path / kept.path, rolled_back, cut_short):
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert orphan_files(tmp_path, session=session) == sorted([rolled_back, cut_short])
    assert orphan_files(tmp_path / "elsewhere", session=session) == []

    from typer.testing import CliRunner

    from monitor.cli import app

    monkeypatch.setenv("MONITOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MONITOR_DATABASE_URL", session.get_bind().url.render_as_string(hide_password=False))
    dry = CliRunner().invoke(app, ["tickets", "clean-attachments", "--dry-run"])
    assert dry.exit_code == 0 and "2 orphan files" in dry.output and rolled_back.exists()
    done = CliRunner().invoke(app, ["tickets", "clean-attachments"])
    assert done.exit_code == 0, done.output
    assert not rolled_back.exists() and not cut_short.exists()
    assert (tmp_path / kept.path).exists() and fresh.exists(), "what a ticket names, and a fresh upload, stay"
