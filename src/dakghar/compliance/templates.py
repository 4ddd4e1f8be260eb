"""DLT content templates: compile ``{#var#}`` texts to regexes and match bodies fast.

TRAI's DLT rules let a header send only bodies that match one of its registered templates, where
each ``{#var#}`` stands for at most 30 characters. An account may hold thousands of templates, so
they are grouped by header, and within a header filed under a literal word every matching body
must contain as a token; each bucket is compiled into one alternation regex whose named groups
say which template matched. A body is checked against the buckets of its own words only.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable

from dakghar.errors import ValidationError
from dakghar.store.compliance import Template as Template  # the stored record, re-exported

VAR = "{#var#}"
MAX_VAR_CHARS = 30
_VAR_SPLIT = re.compile(re.escape(VAR), re.IGNORECASE)
_SPACES = re.compile(r"\s+")


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


def anchor_words(text: str) -> frozenset[str]:
    """Literal words and word pairs of ``text`` that every matching body has as tokens.

    Tokens are whitespace-separated; a pair is two adjacent literal words joined by one space,
    which a body has as two consecutive tokens (pairs are far more selective than words when
    templates share a small vocabulary). A word touching a placeholder (``Rs{#var#}``) is left
    out: in a body it is glued to the variable's text and is not a token of its own.
    """
    literals = _VAR_SPLIT.split(text)
    words: set[str] = set()
    for i, literal in enumerate(literals):
        tokens = literal.split()
        if tokens and i > 0 and not literal[:1].isspace():
            tokens = tokens[1:]
        if tokens and i < len(literals) - 1 and not literal[-1:].isspace():
            tokens = tokens[:-1]
        words.update(tokens)
        words.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    return frozenset(words)


def _compile(group: list[Template]) -> tuple[re.Pattern[str], list[Template]]:
    source = "|".join(f"(?P<t{i}>{pattern(t.text)})" for i, t in enumerate(group))
    return re.compile(source), group


def _fullmatch(compiled: tuple[re.Pattern[str], list[Template]], body: str) -> Template | None:
    m = compiled[0].fullmatch(body)
    if m is None or m.lastgroup is None:
        return None
    return compiled[1][int(m.lastgroup[1:])]


class _HeaderTemplates:
    """One header's templates, bucketed by a word each one's bodies must contain.

    Each template is filed under its rarest anchor (see :func:`anchor_words`), so a body is
    tried only against the buckets of its own tokens and token pairs: a few small alternations
    instead of one regex of thousands of branches (which Python's engine tries one by one).
    Templates without an anchor word (all placeholders) are always tried, last.
    """

    def __init__(self, templates: list[Template]) -> None:
        anchors = [anchor_words(t.text) for t in templates]
        seen = Counter(w for words in anchors for w in words)
        buckets: dict[str, list[Template]] = {}
        rest: list[Template] = []
        for t, words in zip(templates, anchors, strict=True):
            if words:
                buckets.setdefault(min(words, key=lambda w: (seen[w], w)), []).append(t)
            else:
                rest.append(t)
        self.size = len(templates)
        self.buckets = {word: _compile(group) for word, group in buckets.items()}
        self.rest = _compile(rest) if rest else None

    def match(self, body: str) -> Template | None:
        tried: set[str] = set()
        tokens = body.split()
        keys = [f"{a} {b}" for a, b in itertools.pairwise(tokens)] + tokens
        for token in keys:
            bucket = self.buckets.get(token)
            if bucket is None or token in tried:
                continue
            tried.add(token)
            found = _fullmatch(bucket, body)
            if found is not None:
                return found
        return _fullmatch(self.rest, body) if self.rest is not None else None


class TemplateIndex:
    """All templates of one account, grouped per header and bucketed for fast matching."""

    def __init__(self, templates: Iterable[Template]) -> None:
        by_header: dict[str, list[Template]] = {}
        for t in templates:
            by_header.setdefault(t.header.upper(), []).append(t)
        self._groups = {header: _HeaderTemplates(group) for header, group in by_header.items()}

    def __len__(self) -> int:
        return sum(g.size for g in self._groups.values())

    def headers(self) -> frozenset[str]:
        """Headers with at least one template."""
        return frozenset(self._groups)

    def match(self, header: str | None, body: str) -> Template | None:
        """The template of ``header`` that ``body`` matches, or None."""
        group = self._groups.get((header or "").upper())
        return None if group is None else group.match(body.strip())
