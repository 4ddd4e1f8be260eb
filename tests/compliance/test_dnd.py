"""Importing the national DND list and looking numbers up, with preference categories."""

from __future__ import annotations

from pathlib import Path

from dakghar.compliance import dnd
from dakghar.core.message import MessageType
from dakghar.pipeline.dnd import DndRegistry

CSV = (
    "phone,preferences\n"
    "9876543210,0\n"
    '+919800000001,"1,3"\n'
    "09800000002,5\n"
    "9876543210,2\n"
    "not-a-number,1\n"
)


def test_import_writes_a_sorted_compact_file_and_lookups_answer(tmp_path: Path) -> None:
    src = tmp_path / "ncpr.csv"
    src.write_text(CSV)
    seen: list[int] = []
    result = dnd.import_csv(src, tmp_path, seen.append)
    assert (result.numbers, result.skipped) == (3, 1)
    assert result.bytes == 16 + 3 * 8
    assert seen and seen[-1] == src.stat().st_size
    reg = dnd.DndFile(result.path)
    assert reg.preferences("+919876543210") == 0  # listed twice: the stricter entry wins
    assert reg.preferences("+919800000001") == 0b101  # categories 1 and 3
    assert reg.preferences("+919800000002") == 0b10000
    assert reg.preferences("+919800000003") is None
    assert reg.preferences("+919800000000") is None
    reg.close()


def test_runs_are_merged_when_the_list_is_larger_than_a_run(
    tmp_path: Path, monkeypatch: object
) -> None:
    src = tmp_path / "big.csv"
    numbers = [9000000000 + (i * 7919) % 50000 for i in range(50000)]
    src.write_text("".join(f"{n},0\n" for n in numbers))
    dnd.RUN_SIZE, saved = 7000, dnd.RUN_SIZE
    try:
        result = dnd.import_csv(src, tmp_path)
    finally:
        dnd.RUN_SIZE = saved
    assert result.numbers == len(set(numbers))
    reg = dnd.DndFile(result.path)
    assert all(reg.preferences(f"+91{n}") == 0 for n in numbers[::997])
    assert reg.preferences("+919000050001") is None


def test_registry_blocks_promotions_unless_the_category_is_accepted(tmp_path: Path) -> None:
    src = tmp_path / "ncpr.csv"
    src.write_text(CSV)
    dnd.import_csv(src, tmp_path)
    reg = DndRegistry(path=tmp_path / dnd.FILE_NAME)
    promo = MessageType.PROMOTIONAL
    assert reg.blocks("+919876543210", promo, sandbox=False)
    assert reg.blocks("+919876543210", promo, sandbox=False, category="banking")
    assert not reg.blocks("+919800000001", promo, sandbox=False, category="banking")
    assert not reg.blocks("+919800000001", promo, sandbox=False, category="3")
    assert reg.blocks("+919800000001", promo, sandbox=False, category="health")
    assert reg.blocks("+919800000001", promo, sandbox=False)  # no category: any listing blocks
    assert not reg.blocks("+919811111111", promo, sandbox=False)
    for other in (MessageType.OTP, MessageType.TRANSACTIONAL):
        assert not reg.blocks("+919876543210", other, sandbox=False)


def test_sandbox_keeps_its_magic_number_and_suppressions_apply(tmp_path: Path) -> None:
    reg = DndRegistry(path=tmp_path / dnd.FILE_NAME, suppressed=lambda a, n: a == "acc_1")
    promo = MessageType.PROMOTIONAL
    assert reg.blocks("+917000000004", promo, sandbox=True)
    assert not reg.blocks("+917000000004", promo, sandbox=False)
    assert reg.blocks("+919811111111", promo, sandbox=False, account_id="acc_1")
    assert not reg.blocks("+919811111111", promo, sandbox=False, account_id="acc_2")
