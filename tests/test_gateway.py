"""The composition root: every role opens its parts once, in one order, and closes them all."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from dakghar.api.services import Services
from dakghar.gateway import Gateway
from dakghar.pipeline.process import metrics_path
from dakghar.pipeline.runtime import DeliveryPlan, Pipeline
from tests.conftest import make_settings
from tests.e2e.test_delivery import dead_port, smpp_connector


async def test_an_api_gateway_with_inline_delivery_holds_every_part_typed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, connectors=[smpp_connector("airtel", dead_port())])
    plan = DeliveryPlan.from_settings(settings)
    gw = await Gateway.open(settings, role="api", delivery="inline", plan=plan, alerts=True)
    try:
        pipeline = gw.pipeline
        assert pipeline is not None and gw.delivery is pipeline
        assert pipeline.simulator is not None and pipeline.simulator.address is not None
        # the connectors the config check built are the ones that run: built once per process
        assert pipeline.dispatcher.connectors["airtel"] is plan.connectors["airtel"]
        assert gw.campaigns is not None and gw.alerts is not None
        assert gw.otp is gw.services.otp and gw.metrics is gw.services.metrics
        assert pipeline.dispatcher.notify in gw.services.acceptor.listeners
        assert "connectors" in gw.services.readiness
    finally:
        await gw.close()
    assert pipeline.dispatcher.notify not in gw.services.acceptor.listeners


async def test_the_api_alone_runs_no_delivery_and_no_alerts_unless_asked(tmp_path: Path) -> None:
    gw = await Gateway.open(make_settings(tmp_path), role="api")
    try:
        assert gw.delivery is None and gw.pipeline is None and gw.alerts is None
        assert gw.campaigns is not None  # on SQLite, recovered before anything else runs
    finally:
        await gw.close()


async def test_the_dispatcher_role_runs_delivery_and_writes_its_metrics(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    gw = await Gateway.open(settings, role="dispatcher")
    try:
        assert gw.pipeline is not None and gw.campaigns is None and gw.alerts is None
        for _ in range(100):
            if metrics_path(settings).exists():
                break
            await asyncio.sleep(0.02)
        assert "dakghar_" in metrics_path(settings).read_text()
    finally:
        await gw.close()


async def test_a_part_that_fails_to_start_stops_the_parts_before_it(tmp_path: Path) -> None:
    seen: list[Services] = []
    addresses: list[tuple[str, int]] = []

    async def broken(svc: Services) -> Callable[[], Awaitable[None]]:
        seen.append(svc)
        if isinstance(svc.delivery, Pipeline) and svc.delivery.simulator is not None:
            addresses.append(svc.delivery.simulator.address)
        raise RuntimeError("this part cannot start")

    with pytest.raises(RuntimeError, match="cannot start"):
        await Gateway.open(
            make_settings(tmp_path), role="api", delivery="inline", components=[broken]
        )
    [svc] = seen
    pipeline = svc.delivery
    assert isinstance(pipeline, Pipeline) and pipeline.simulator is not None
    assert pipeline.dispatcher.notify not in svc.acceptor.listeners
    [(host, port)] = addresses
    with pytest.raises(OSError):  # the simulated carrier stopped listening
        await asyncio.open_connection(host, port)
