"""The message catalogue: every message of the code and of the page templates has its English, and the
English keeps the placeholders of its Vietnamese id. Messages are written in Vietnamese (the source), so a
Vietnamese text cannot be missing; this is the check that the other language keeps up (CI fails here)."""

from __future__ import annotations

import re
import string
from pathlib import Path

from babel.messages.extract import extract_from_dir

from monitor import i18n

ROOT = Path(__file__).resolve().parent.parent
METHODS = [("monitor/**.py", "python"), ("monitor/web/templates/**.html", "jinja2")]
#: gettext's names, and `_stored` (titles stored in Vietnamese, translated when shown): as `make messages` passes.
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2), "_stored": None}
OPTIONS = {"monitor/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _fields(text: str) -> set[str]:
    brace = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    percent = set(re.findall(r"%\((\w+)\)s", text))
    return brace | percent


def _extracted() -> dict[str, str]:
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for one in ids:
            if one:
                found[one] = filename
    return found


def test_every_message_people_read_has_its_english() -> None:
    english = i18n.catalogue("en")
    missing = {message: where for message, where in _extracted().items() if message not in english}
    assert not missing, "no English for (run `make messages`, then translate):\n" + "\n".join(
        f"  {where}: {message!r}" for message, where in sorted(missing.items(), key=lambda item: item[1])
    )


def test_the_english_keeps_the_placeholders_of_its_vietnamese_id() -> None:
    for message, text in i18n.catalogue("en").items():
        assert _fields(message) == _fields(text), message
