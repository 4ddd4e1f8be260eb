"""The compliance area of the store contract: senders, DLT templates, suppressions, owners."""

from __future__ import annotations

from dakghar.store.base import Store
from dakghar.store.compliance import Rules, Sender, Template
from tests.store.test_sqlite_store import row


async def test_a_new_account_has_no_compliance_rows(any_store: Store) -> None:
    acc = await any_store.create_account(name="a", balance_milli=0)
    assert await any_store.compliance_rules(acc.id) == Rules([], [], frozenset())


async def test_a_sender_is_upper_cased_per_type_and_its_entity_id_updated(
    any_store: Store,
) -> None:
    acc = await any_store.create_account(name="a", balance_milli=0)
    other = await any_store.create_account(name="b", balance_milli=0)
    await any_store.add_sender(acc.id, Sender("acmebk", "service", "1201"))
    await any_store.add_sender(acc.id, Sender("ACMEBK", "service", "1202"))  # same header, type
    await any_store.add_sender(acc.id, Sender("ACMEBK", "transactional", None))
    await any_store.add_sender(acc.id, Sender("ACMESL", "promotional", "1203"))
    await any_store.add_sender(other.id, Sender("OTHER", "service", None))
    rules = await any_store.compliance_rules(acc.id)
    assert rules.senders == [
        Sender("ACMEBK", "service", "1202"),
        Sender("ACMEBK", "transactional", None),
        Sender("ACMESL", "promotional", "1203"),
    ]
    assert (await any_store.compliance_rules(other.id)).senders == [
        Sender("OTHER", "service", None)
    ]


async def test_templates_are_replaced_by_id_and_read_in_id_order(any_store: Store) -> None:
    acc = await any_store.create_account(name="a", balance_milli=0)
    first = [
        Template("T2", "acmebk", "service", "Bye {#var#}"),
        Template("T1", "ACMEBK", "service", "Hi {#var#}, 100% sure"),
    ]
    assert await any_store.add_templates(acc.id, first) == 2
    assert await any_store.add_templates(acc.id, []) == 0
    changed = Template("T2", "ACMESL", "banking", "Flat {#var#} off")
    assert await any_store.add_templates(acc.id, [changed]) == 1
    assert (await any_store.compliance_rules(acc.id)).templates == [
        Template("T1", "ACMEBK", "service", "Hi {#var#}, 100% sure"),
        Template("T2", "ACMESL", "banking", "Flat {#var#} off"),
    ]
    other = await any_store.create_account(name="b", balance_milli=0)
    assert (await any_store.compliance_rules(other.id)).templates == []


async def test_a_suppression_is_per_account_and_idempotent(any_store: Store) -> None:
    acc = await any_store.create_account(name="a", balance_milli=0)
    other = await any_store.create_account(name="b", balance_milli=0)
    assert await any_store.add_suppression(acc.id, "+919812345678", "opt_out") is True
    assert await any_store.add_suppression(acc.id, "+919812345678", "opt_out") is False
    assert await any_store.add_suppression(acc.id, "+919812345679", "manual") is True
    assert (await any_store.compliance_rules(acc.id)).suppressed == {
        "+919812345678",
        "+919812345679",
    }
    assert (await any_store.compliance_rules(other.id)).suppressed == frozenset()


async def test_a_reply_belongs_to_the_accounts_that_registered_the_header(
    any_store: Store,
) -> None:
    a = await any_store.create_account(name="a", balance_milli=0)
    b = await any_store.create_account(name="b", balance_milli=0)
    c = await any_store.create_account(name="c", balance_milli=0)
    await any_store.add_sender(b.id, Sender("ACMESL", "promotional", None))
    await any_store.add_sender(a.id, Sender("ACMESL", "service", None))
    await any_store.add_sender(a.id, Sender("ACMESL", "promotional", None))
    await any_store.add_sender(c.id, Sender("OTHER", "service", None))
    owners = await any_store.opt_out_owners("acmesl", "+919812345678")
    assert owners == sorted([a.id, b.id])


async def test_a_reply_to_an_unregistered_header_belongs_to_who_sent_from_it(
    any_store: Store,
) -> None:
    used = await any_store.create_account(name="used", balance_milli=0)
    elsewhere = await any_store.create_account(name="elsewhere", balance_milli=0)
    silent = await any_store.create_account(name="silent", balance_milli=0)
    to_them = row(used.id)
    to_them.sender = "ShopIn"
    to_someone_else = row(elsewhere.id)
    to_someone_else.sender, to_someone_else.to_number = "SHOPIN", "+919812345670"
    await any_store.accept_messages(used.id, [to_them], charge=False)
    await any_store.accept_messages(elsewhere.id, [to_someone_else], charge=False)
    assert await any_store.opt_out_owners("SHOPIN", "+919812345678") == [used.id]
    assert await any_store.opt_out_owners("NOBODY", "+919812345678") == []
    assert silent.id not in await any_store.opt_out_owners("shopin", "+919812345670")
