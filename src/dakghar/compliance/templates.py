"""DLT content templates: compile ``{#var#}`` texts to regexes and match bodies fast.

TRAI's DLT rules let a header send only bodies that match one of its registered templates, where
each ``{#var#}`` stands for at most 30 characters. An account may hold thousands of templates, so
they are grouped by header and each group is compiled into ONE alternation regex whose named
groups say which template matched: a body is checked with a single C-level ``fullmatch``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dakghar.errors import ValidationError

VAR = "{#var#}"
MAX_VAR_CHARS = 30
_VAR_SPLIT = re.compile(re.escape(VAR), re.IGNORECASE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Template:
    """One registered DLT template of an account."""

    id: str
    header: str
    category: str
    text: str


def pattern(text: str) -> str:
    """The regex source matching bodies of ``text`` (whitespace runs match any whitespace run).

    Carriers compare modulo whitespace, so a literal run of spaces or newlines matches ``\\s+``;
    a variable matches 0 to 30 characters of anything, newlines included.
    """
    parts: list[str] = []
    for i, literal in enumerate(_VAR_SPLIT.split(text)):
        if i:
            parts.append(f"[\\s\\S]{{0,{MAX_VAR_CHARS}}}?")
        parts.append(r"\s+".join(re.escape(w) for w in _SPACES.split(literal)))
    return "".join(parts)


def validate(text: str) -> str:
    """The template text, or :class:`ValidationError` when it cannot be a DLT template."""
    if not text.strip():
        raise ValidationError("a template needs text")
    if "{#" in _VAR_SPLIT.sub("", text):
        raise ValidationError("placeholders are written {#var#} exactly")
    return text.strip()


class TemplateIndex:
    """All templates of one account, compiled per header for one-pass matching."""

    def __init__(self, templates: Iterable[Template]) -> None:
        by_header: dict[str, list[Template]] = {}
        for t in templates:
            by_header.setdefault(t.header.upper(), []).append(t)
        self._groups: dict[str, tuple[re.Pattern[str], list[Template]]] = {}
        for header, group in by_header.items():
            source = "|".join(f"(?P<t{i}>{pattern(t.text)})" for i, t in enumerate(group))
            self._groups[header] = (re.compile(source), group)

    def __len__(self) -> int:
        return sum(len(g) for _, g in self._groups.values())

    def headers(self) -> frozenset[str]:
        """Headers with at least one template."""
        return frozenset(self._groups)

    def match(self, header: str | None, body: str) -> Template | None:
        """The template of ``header`` that ``body`` matches, or None."""
        group = self._groups.get((header or "").upper())
        if group is None:
            return None
        compiled, templates = group
        m = compiled.fullmatch(body.strip())
        if m is None or m.lastgroup is None:
            return None
        return templates[int(m.lastgroup[1:])]
