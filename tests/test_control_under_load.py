"""Changing the config while a steady stream of requests flows: reordering, draining and
reloading the file lose no request and answer none twice (the vendors saw exactly as many
requests as the clients got answers), and a drained deployment gets no new request once
the drain call has returned."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gateway.simulator import VendorFleet
from tests.admin_harness import AdminGateway, eventually, gateways, start_in_process, write_config
from tests.conftest import FAST
from tests.load_harness import SteadyLoad

__all__ = ["gateways"]

VENDORS = ("alpha", "beta", "gamma")


def config_text(fleet: VendorFleet, order: str) -> str:
    providers = "".join(
        f'  {n}: {{kind: openai_compatible, base_url: "{fleet[n].openai_base_url}"}}\n'
        for n in VENDORS
    )
    return FAST + "providers:\n" + providers + f"routes:\n  chat:\n    fallbacks: [{order}]\n"


def chat_requests(fleet: VendorFleet) -> dict[str, int]:
    return {n: fleet[n].stats().by_path.get("chat", 0) for n in VENDORS}


def test_reorder_drain_and_reload_under_steady_traffic(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    path = write_config(tmp_path / "conf", config_text(fleet, "alpha/a, beta/b, gamma/g"))
    gw = start_in_process(path)
    gateways.append(gw)
    load = SteadyLoad(gw.base_url, threads=4).start()
    try:
        load.wait_for(30)
        # 1. reorder: beta first
        reorder = gw.change(
            {"op": "set_order", "alias": "chat", "order": ["beta/b", "alpha/a", "gamma/g"]}
        )
        assert reorder.status_code == 200, reorder.text
        reordered_at = time.monotonic()
        load.wait_for(30)
        # 2. drain beta (the deployment now taking all traffic)
        drain_sent = time.monotonic()
        drain = gw.change({"op": "drain", "deployment": "beta/b"})
        drained_at = time.monotonic()
        assert drain.status_code == 200, drain.text
        in_flight_at_drain = drain.json()["in_flight"]["beta/b"]
        beta_seen_at_drain = fleet["beta"].stats().by_path.get("chat", 0)
        load.wait_for(40)
        beta_after_drain = fleet["beta"].stats().by_path.get("chat", 0)
        routes = gw.admin().get("/admin/routes").json()["aliases"][0]["deployments"]
        assert next(d for d in routes if d["deployment"] == "beta/b")["in_flight"] == 0
        # 3. reload the file: gamma first (the drain and the runtime order stay)
        version = gw.version()
        reload_sent = time.monotonic()
        tmp = path.with_name("providers.yaml.new")
        tmp.write_text(config_text(fleet, "gamma/g, alpha/a, beta/b"))
        os.replace(tmp, path)
        eventually(lambda: gw.version() != version, timeout=5)
        gw.change({"op": "reset_route", "alias": "chat"})
        reloaded_at = time.monotonic()
        load.wait_for(30)
    finally:
        outcomes = load.stop()

    failures = [o for o in outcomes if not o.ok]
    assert failures == [], failures[:5]
    seen = chat_requests(fleet)
    assert sum(seen.values()) == len(outcomes)  # none lost, none answered twice
    assert len({o.prompt for o in outcomes}) == len(outcomes)

    # A drained deployment gets nothing new once the drain has returned: the vendor saw at
    # most what was already in flight, and no request that started later touched it.
    assert beta_after_drain <= beta_seen_at_drain + in_flight_at_drain
    assert seen["beta"] == beta_after_drain
    later = [o for o in outcomes if o.started > drained_at]
    assert later and all("beta/b=ok" not in o.route for o in later)

    def served(since: float, until: float) -> set[str]:
        """Who served the requests sent after `since` and answered before `until`."""
        return {o.provider for o in outcomes if since < o.started and o.finished < until}

    assert served(reordered_at, drain_sent) == {"beta"}
    assert served(drained_at, reload_sent) == {"alpha"}
    assert served(reloaded_at, float("inf")) == {"gamma"}
    assert len({o.version for o in outcomes}) >= 5  # every change was visible to clients
