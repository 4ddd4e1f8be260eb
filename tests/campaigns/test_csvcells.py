"""The formula-injection rule of ``core.csvcells`` (OWASP: prefix a quote; E.164 left alone)."""

from __future__ import annotations

import io

from dakghar.core.csvcells import neutralise, safe_writer


def test_neutralise_prefixes_every_trigger_but_an_exact_e164_number() -> None:
    for cell in ("=1+1", "+1+1", "-1", "@A1", "\tx", "\rx", "+91 98123 45678", "+0123456789"):
        assert neutralise(cell) == "'" + cell
    for cell in ("+919812345678", "+14155550100", "plain", "", "9812345678", "a=b"):
        assert neutralise(cell) == cell
    assert neutralise(None) == "" and neutralise(-5) == "'-5"
    out = io.StringIO()
    safe_writer(out, lineterminator="\n").writerows([["=x", "+919812345678"], ["ok", "@y"]])
    assert out.getvalue() == "'=x,+919812345678\nok,'@y\n"
