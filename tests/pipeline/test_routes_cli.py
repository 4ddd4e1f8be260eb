"""`dakghar routes`: list, test, add and remove rules in a real dakghar.toml, keeping comments."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dakghar.cli.main import cli
from dakghar.settings import load_settings

CONFIG = """# production gateway
[[connectors]]
name = "airtel"  # primary SMSC
type = "smpp"
host = "127.0.0.1"
port = 2775
system_id = "acme"

[[connectors]]
name = "jio"
type = "smpp"
host = "127.0.0.1"
port = 2776
system_id = "acme"

[[connectors]]
name = "msg91"
type = "msg91"
auth_key = "k"
"""


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "dakghar.toml"), *args])
    return result.exit_code, result.output


def test_routes_are_added_listed_tried_and_removed(tmp_path: Path) -> None:
    config = tmp_path / "dakghar.toml"
    config.write_text(CONFIG)
    split = ["--connector", "airtel:70", "--connector", "jio:30", "--connector", "msg91"]
    code, out = run(tmp_path, "routes", "add", "--country", "IN", *split)
    assert code == 0 and "added route #1" in out
    code, out = run(tmp_path, "routes", "add", "--type", "otp", "--connector", "airtel",
                    "--position", "1")  # fmt: skip
    assert code == 0
    code, out = run(tmp_path, "routes", "list")
    assert out.splitlines()[:2] == [
        "#1 when type=otp -> airtel",
        "#2 when country=in -> (airtel:70 / jio:30) -> msg91",
    ]
    code, out = run(tmp_path, "routes", "test", "09812345678", "--type", "promotional")
    assert code == 0 and "order: one of airtel/jio -> msg91" in out
    code, out = run(tmp_path, "routes", "test", "+14155550123")
    assert code == 1 and "no_route" in out and "5550123" not in out

    text = config.read_text()
    assert "# production gateway" in text and "# primary SMSC" in text
    routes = load_settings(config).routes
    assert [r["connectors"][0] for r in routes] == ["airtel", {"name": "airtel", "weight": 70}]

    assert run(tmp_path, "routes", "remove", "1")[0] == 0
    assert [r.get("type") for r in load_settings(config).routes] == [None]
    assert run(tmp_path, "routes", "remove", "5")[0] == 1


def test_a_bad_rule_is_refused_before_the_file_is_touched(tmp_path: Path) -> None:
    config = tmp_path / "dakghar.toml"
    config.write_text(CONFIG)
    code, out = run(tmp_path, "routes", "add", "--prefix", "91x", "--connector", "airtel")
    assert code == 1 and "digits" in out
    assert config.read_text() == CONFIG
