"""Hypothesis strategies that build every SMPP PDU type from the codec's own layout table."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from dakghar.smpp import pdu as p
from dakghar.smpp.codec import LAYOUTS
from dakghar.smpp.tlv import CSTRING, CSTRING_MAX, TAG_KINDS

u8 = st.integers(0, 255)
# C-strings hold octets 1..255 (read back as Latin-1), never NUL.
_cchar = st.characters(min_codepoint=1, max_codepoint=255)


def cstring(size: int) -> st.SearchStrategy[str]:
    return st.text(_cchar, max_size=size - 1)


_known_tlv = st.sampled_from(sorted(TAG_KINDS))
_unknown_tag = st.integers(0, 0xFFFF).filter(lambda t: t not in TAG_KINDS)


@st.composite
def tlvs(draw: st.DrawFn) -> dict[int, p.TlvValue]:
    out: dict[int, p.TlvValue] = {}
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            tag = draw(_known_tlv)
            kind = TAG_KINDS[tag]
            if kind == CSTRING:
                out[tag] = draw(cstring(CSTRING_MAX[tag]))
            else:
                out[tag] = draw(st.integers(0, (1 << (8 * kind)) - 1))
        else:
            out[draw(_unknown_tag)] = draw(st.binary(max_size=40))
    return out


_dest = st.one_of(
    st.builds(p.SmeAddress, u8, u8, cstring(21)),
    st.builds(p.DistributionList, cstring(21)),
)
_unsuccess = st.builds(p.UnsuccessSme, u8, u8, cstring(21), st.integers(0, 0xFFFFFFFF))


def _field(spec: Any) -> st.SearchStrategy[Any]:
    if spec == "u8":
        return u8
    if spec == "sm":
        return st.binary(max_size=254)
    if spec == "dests":
        return st.lists(_dest, max_size=5)
    if spec == "unsucc":
        return st.lists(_unsuccess, max_size=5)
    return cstring(spec[0])


def pdu_of(cls: type[p.Pdu]) -> st.SearchStrategy[p.Pdu]:
    fields = {name: _field(spec) for name, spec in LAYOUTS[cls]}
    return st.builds(
        cls,
        sequence_number=st.integers(0, 0xFFFFFFFF),
        command_status=st.integers(0, 0xFFFFFFFF),
        tlvs=tlvs(),
        **fields,
    )


any_pdu = st.sampled_from(sorted(LAYOUTS, key=lambda c: c.__name__)).flatmap(pdu_of)
