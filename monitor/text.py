"""Text helpers for Vietnamese: search that ignores diacritics and case."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

_SPACES = re.compile(r"\s+")
# đ/Đ is a letter of its own, not d with a combining mark, so NFD leaves it alone.
_LETTERS = str.maketrans({"đ": "d", "Đ": "d"})


def fold(text: str) -> str:
    """Lower-case `text`, strip Vietnamese diacritics and collapse spaces.

    `fold("Huyện Đình Lập") == "huyen dinh lap"`, so a user typing without accents finds the place.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare.casefold()).strip()


def like_pattern(query: str) -> str:
    """A LIKE pattern matching folded text that contains every word of `query`, in order."""
    words = [w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in fold(query).split()]
    return "%" + "%".join(words) + "%"


def uploaded_name(filename: str, default: str) -> str:
    """The name an uploaded file is shown under: its last path component (whichever separators the client
    used), printable characters only, at most 200; `default` when nothing is left."""
    name = PureWindowsPath(PurePosixPath(filename).name).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or default
