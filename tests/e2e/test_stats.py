"""Delivery analytics from real deliveries: /v1/stats and `dakghar stats` read the rollups."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dakghar.cli.main import cli
from dakghar.store.rollups import StatsRow, bucket
from tests.e2e.test_delivery import FINAL, delivering, send, wait_status


def test_stats_by_carrier_and_type_count_real_deliveries(tmp_path: Path) -> None:
    with delivering(tmp_path) as gw:
        t = gw.tenant(mode="test")
        other = gw.tenant(mode="test", name="other")
        ids = [send(gw, t.headers, to=f"+91981234567{i}")["id"] for i in range(3)]  # Vi
        ids.append(send(gw, t.headers, to="+917000000002")["id"])  # Jio, undelivered
        ids.append(send(gw, t.headers, to="+917012345678", type="otp")["id"])  # Jio
        send(gw, other.headers, to="+919812345670")  # another account's traffic
        for mid in ids:
            wait_status(gw, t.headers, mid, FINAL)
        by_carrier = gw.client.get("/v1/stats?group_by=carrier", headers=t.headers).json()
        rows = {r["key"]: r for r in by_carrier["data"]}
        assert rows["Vi"] | {"p50_delivery_seconds": None} == {
            "key": "Vi", "submitted": 3, "delivered": 3, "failed": 0, "delivery_rate": 1.0,
            "p50_delivery_seconds": None,
        }  # fmt: skip
        assert 0 <= rows["Vi"]["p50_delivery_seconds"] <= 1
        assert (rows["Jio"]["submitted"], rows["Jio"]["delivered"], rows["Jio"]["failed"]) == (
            2, 1, 1,
        )  # fmt: skip
        assert rows["Jio"]["delivery_rate"] == 0.5
        by_type = gw.client.get("/v1/stats?group_by=type", headers=t.headers).json()["data"]
        assert {r["key"]: r["submitted"] for r in by_type} == {"transactional": 4, "otp": 1}
        past = gw.client.get(
            "/v1/stats?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z", headers=t.headers
        )
        assert past.json()["data"] == []
        bad = gw.client.get("/v1/stats?group_by=number", headers=t.headers)
        assert bad.status_code == 422

        env = {
            "DAKGHAR_DATA_DIR": gw.settings.data_dir,
            "DAKGHAR_DATABASE_URL": gw.settings.database_url,
            "DAKGHAR_SECRET_KEY": gw.settings.secret_key or "",
        }
        out = CliRunner().invoke(cli, ["stats", "--account", t.account.id, "--by", "carrier"],
                                 env=env, terminal_width=120)  # fmt: skip
        assert out.exit_code == 0, out.output
        assert "Vi" in out.output and "100.0%" in out.output and "50.0%" in out.output


def test_median_is_interpolated_inside_its_bucket() -> None:
    row = StatsRow("x", histogram=[0] * 10)
    assert row.p50_delivery_seconds is None and row.delivery_rate is None
    assert row.histogram is not None
    row.histogram[bucket(0.4)] = 2  # both under a second
    row.histogram[bucket(4)] = 2  # 2-5 s
    assert row.p50_delivery_seconds == 1.0
    row.histogram[bucket(4)] = 6
    assert 2 < (row.p50_delivery_seconds or 0) <= 5
