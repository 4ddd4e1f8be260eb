"""CSV cells that a spreadsheet will not run as formulas (CSV/formula injection, OWASP).

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken as a formula
by Excel, LibreOffice and Google Sheets when the CSV is opened; a campaign's report echoes phone
numbers exactly as the customer's upload wrote them, so such a cell could carry
``=HYPERLINK(...)`` or a DDE payload to whoever opens the report. OWASP's remedy is to prefix such
a cell with a single quote, which spreadsheets show as text and do not evaluate.

One exception: a value that is exactly an E.164 number (``+919812345678``) is written as it is.
Our phone column is E.164 throughout, a leading ``+`` followed by digits only cannot form a
formula that does anything but evaluate to that number, and prefixing every phone number would
mangle the one column every reader of the report relies on. Anything else starting with ``+``
(``+91 98123 45678``, ``+1+cmd|...``) is neutralised.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def neutralise(value: object) -> str:
    """``value`` as a CSV cell that no spreadsheet evaluates (see the module docstring)."""
    text = "" if value is None else str(value)
    if text.startswith(_TRIGGERS) and _E164.fullmatch(text) is None:
        return "'" + text
    return text


class SafeWriter:
    """A ``csv.writer`` whose every cell goes through :func:`neutralise`."""

    def __init__(self, out: _Writable, **fmt: Any) -> None:
        self._writer = csv.writer(out, **fmt)

    def writerow(self, row: Iterable[object]) -> Any:
        """Write one row of neutralised cells."""
        return self._writer.writerow([neutralise(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        """Write every row of neutralised cells."""
        for row in rows:
            self.writerow(row)


def safe_writer(out: _Writable, **fmt: Any) -> SafeWriter:
    """Like ``csv.writer(out, **fmt)``, neutralising every cell against formula injection."""
    return SafeWriter(out, **fmt)
