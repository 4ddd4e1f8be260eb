"""DLT ids travel to the carrier: a live message over SMPP carries the PE and template TLVs.

The real app with its delivery component sends to a simulated carrier on a loopback port; the
carrier records each submit_sm as it saw it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dakghar.compliance import records
from dakghar.compliance.templates import Template
from dakghar.smpp.simulator import SubmitRecord
from dakghar.smpp.tlv import Tag
from tests.e2e.carrier import carrier
from tests.e2e.test_delivery import FINAL, delivering, send, smpp_connector, wait_status

pytestmark = pytest.mark.timeout(60)

ENTITY, TEMPLATE = "1201159100000000001", "1207161234567890123"


def test_entity_and_template_ids_reach_the_carrier_as_tlvs(tmp_path: Path) -> None:
    with carrier() as sim:
        seen: list[SubmitRecord] = []
        sim.on_submit = seen.append
        assert sim.address is not None
        conn = {**smpp_connector("carrier", sim.address[1]), "dlt": True}
        with delivering(tmp_path, connectors=[conn], routes=[{"connectors": ["carrier"]}]) as gw:
            t = gw.tenant(mode="live", dlt_enforced=True)
            store = gw.services.store
            sender = records.Sender("ACMEBK", "transactional", ENTITY)
            gw.call(records.add_sender, store, t.account.id, sender)
            template = Template(TEMPLATE, "ACMEBK", "service", "Order {#var#} has shipped")
            gw.call(records.add_templates, store, t.account.id, [template])
            gw.services.acceptor.compliance.invalidate()
            sent = send(gw, t.headers, to="+919812345678", body="Order 42 has shipped",
                        sender="ACMEBK")  # fmt: skip
            done = wait_status(gw, t.headers, sent["id"], FINAL)
            refused = gw.client.post(
                "/v1/messages",
                json={"to": "+919812345678", "body": "Free text", "sender": "ACMEBK"},
                headers=t.headers,
            )
    assert done["status"] == "delivered"
    assert refused.json()["code"] == "template_mismatch"
    [submit] = seen
    assert submit.tlvs[Tag.dlt_pe_id] == ENTITY.encode()
    assert submit.tlvs[Tag.dlt_template_id] == TEMPLATE.encode()
