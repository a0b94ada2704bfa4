"""The admin API over real sockets: its own port and token, live routes, atomic changes with
optimistic concurrency, the effective config, the audit log and persistence; the openai
SDK on the API port shows each change take effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.config import load_text
from gateway.simulator import VendorFleet, expected_answer
from tests.admin_harness import (
    TOKEN,
    TOKEN_ENV,
    AdminGateway,
    gateways,
    start_in_process,
    write_config,
)
from tests.conftest import FAST

__all__ = ["gateways"]

ROUTES = """
  chat:
    fallbacks: [alpha/sim-a, beta/sim-b]
  other:
    fallbacks: [alpha/sim-o, gamma/sim-g]
"""


def config_text(fleet: VendorFleet, extra: str = "", routes: str = ROUTES) -> str:
    return (
        FAST
        + extra
        + "providers:\n"
        + f'  alpha: {{kind: openai_compatible, base_url: "{fleet["alpha"].openai_base_url}",'
        + ' api_key: "sk-alpha-literal-0123456789"}\n'
        + "".join(
            f'  {n}: {{kind: openai_compatible, base_url: "{fleet[n].openai_base_url}"}}\n'
            for n in ("beta", "gamma")
        )
        + "routes:"
        + routes
    )


@pytest.fixture
def gw(fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]) -> AdminGateway:
    started = start_in_process(write_config(tmp_path / "conf", config_text(fleet)), watch=False)
    gateways.append(started)
    return started


def ask(gw: AdminGateway, prompt: str = "hi", model: str = "chat") -> tuple[Any, str]:
    raw = gw.openai().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == expected_answer(prompt)
    return raw.headers, str(raw.headers["x-gateway-provider"])


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) >= {"message", "type", "param", "code"}
    return body


def test_admin_api_needs_its_own_token_and_port(gw: AdminGateway) -> None:
    missing = httpx.get(gw.admin_url + "/admin/routes")
    assert error(missing, 401)["code"] == "missing_admin_token"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert TOKEN_ENV in missing.json()["error"]["message"]
    wrong = gw.admin("not-the-token").get("/admin/routes")
    assert error(wrong, 401)["code"] == "invalid_admin_token"
    assert "not-the-token" not in wrong.text
    assert httpx.get(gw.url + "/admin/routes").status_code == 404  # not on the API port
    assert gw.admin().post("/v1/chat/completions", json={}).status_code == 404
    assert gw.admin().get("/admin/routes").status_code == 200


def test_without_a_configured_token_every_call_is_refused(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway], monkeypatch: Any
) -> None:
    monkeypatch.delenv(TOKEN_ENV)
    gw = start_in_process(write_config(tmp_path, config_text(fleet)), watch=False)
    gateways.append(gw)
    body = error(gw.admin().get("/admin/routes"), 503)
    assert body["code"] == "admin_token_not_configured"
    assert f"set {TOKEN_ENV}" in body["message"]


def test_routes_show_live_state_and_the_version_every_response_carries(
    gw: AdminGateway,
) -> None:
    headers, _ = ask(gw)
    response = gw.admin().get("/admin/routes")
    data = response.json()
    assert data["version"] == headers["x-gateway-config-version"]
    assert response.headers["etag"] == f'"{data["version"]}"'
    chat = data["aliases"][0]
    assert chat["alias"] == "chat" and chat["routable"] == 2 and not chat["overridden"]
    first = chat["deployments"][0]
    assert first | {"window_calls": 1} == {
        **first,
        "deployment": "alpha/sim-a",
        "position": 1,
        "state": "available",
        "breaker": "closed",
        "drained": False,
        "in_flight": 0,
    }


def test_reorder_takes_effect_on_the_next_request(gw: AdminGateway) -> None:
    assert ask(gw)[1] == "alpha"
    response = gw.change(
        {"op": "set_order", "alias": "chat", "order": ["beta/sim-b", "alpha/sim-a"]}
    )
    assert response.status_code == 200, response.text
    headers, provider = ask(gw, "after")
    assert provider == "beta"
    assert headers["x-gateway-config-version"] == response.json()["version"]
    assert gw.admin().get("/admin/routes").json()["aliases"][0]["overridden"]
    gw.change({"op": "reset_route", "alias": "chat"})
    assert ask(gw, "reset")[1] == "alpha"


def test_weights_split_a_tier(gw: AdminGateway, fleet: VendorFleet) -> None:
    tier = {"op": "set_order", "alias": "chat", "order": [["alpha/sim-a", "beta/sim-b"]]}
    weights = {"op": "set_weights", "alias": "chat", "weights": {"beta/sim-b": 1e6}}
    assert gw.change(tier, weights).status_code == 200
    providers = {ask(gw, f"w{i}")[1] for i in range(20)}
    assert providers == {"beta"}  # alpha's share is one in a million
    listed = gw.admin().get("/admin/routes").json()["aliases"][0]["deployments"]
    assert [(d["tier"], d["weight"]) for d in listed] == [(0, 1.0), (0, 1e6)]


def test_a_stale_or_missing_version_is_refused(gw: AdminGateway) -> None:
    read = gw.version()
    drain = {"op": "drain", "deployment": "beta/sim-b"}
    first = gw.admin().post("/admin/changes", json={"version": read, "changes": [drain]})
    assert first.status_code == 200
    stale = gw.admin().post(
        "/admin/changes", json={"changes": [drain]}, headers={"if-match": f'"{read}"'}
    )
    body = error(stale, 409)
    assert body["code"] == "version_conflict"
    assert body["current_version"] == first.json()["version"] != read
    assert read in body["message"] and "Read it again" in body["message"]
    missing = gw.admin().post("/admin/changes", json={"changes": [drain]})
    assert error(missing, 428)["code"] == "version_required"
    current = first.json()["version"]
    by_digest = gw.admin().post(  # the digest alone is enough (it is what replicas share)
        "/admin/changes",
        json={"changes": [{"op": "enable", "deployment": "beta/sim-b"}]},
        headers={"if-match": current.split("-", 1)[1]},
    )
    assert by_digest.status_code == 200


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            [{"op": "set_order", "alias": "chat", "order": ["alpha/sim-a", "x/m"]}],
            "routes.chat.fallbacks[1]: unknown provider 'x' (known: alpha, beta, gamma)",
        ),
        (
            [{"op": "drain", "deployment": "beta/sim-b"}, {"op": "drain", "deployment": "nope/x"}],
            "changes[1].deployment: unknown deployment 'nope/x'",
        ),
        (
            [{"op": "set_weights", "alias": "chat", "weights": {"alpha/sim-a": 0}}],
            "changes[0].set_weights.weights.alpha/sim-a: Input should be greater than 0",
        ),
    ],
)
def test_an_invalid_change_names_the_problem_and_applies_nothing(
    gw: AdminGateway, changes: list[dict[str, Any]], problem: str
) -> None:
    before = gw.version()
    response = gw.admin().post("/admin/changes", json={"version": before, "changes": changes})
    body = error(response, 400)
    assert any(p.startswith(problem) for p in body["problems"]), body["problems"]
    assert problem in body["message"]
    assert gw.version() == before
    assert ask(gw)[1] == "alpha"  # the drain in the same batch was not applied either


def test_stop_vendor_disable_and_forced_breakers(gw: AdminGateway, fleet: VendorFleet) -> None:
    assert gw.change({"op": "stop_vendor", "provider": "alpha"}).status_code == 200
    headers, provider = ask(gw, "stopped")
    assert provider == "beta"
    assert headers["x-gateway-route"] == "alpha/sim-a=skipped:disabled,beta/sim-b=ok"
    assert ask(gw, "other", model="other")[1] == "gamma"  # every alias
    assert fleet["alpha"].stats().total == 0
    gw.change(
        {"op": "start_vendor", "provider": "alpha"},
        {"op": "force_breaker", "deployment": "alpha/sim-a", "state": "open"},
    )
    assert ask(gw, "forced")[0]["x-gateway-route"].startswith("alpha/sim-a=skipped:breaker_open")
    gw.change(
        {"op": "force_breaker", "deployment": "alpha/sim-a", "state": "auto"},
        {"op": "disable", "deployment": "beta/sim-b"},
    )
    assert ask(gw, "auto")[1] == "alpha"
    listed = gw.admin().get("/admin/routes").json()["aliases"][0]["deployments"]
    assert (listed[1]["state"], listed[1]["why"]) == ("disabled", "disabled by an operator")


def test_effective_config_is_yaml_with_overrides_and_masked_secrets(gw: AdminGateway) -> None:
    gw.change(
        {"op": "set_order", "alias": "chat", "order": ["beta/sim-b", "alpha/sim-a"]},
        {"op": "drain", "deployment": "gamma/sim-g"},
    )
    response = gw.admin().get("/admin/config")
    assert response.headers["content-type"].startswith("application/yaml")
    text = response.text
    assert "sk-alpha-literal" not in text and "api_key: <masked>" in text
    assert "#   gamma/sim-g: drained" in text
    assert response.headers["etag"] == f'"{gw.version()}"'
    pasted = load_text(text, "pasted")  # what an SRE copies back into the file
    assert [t.provider for t in pasted.config.routes["chat"].fallbacks] == ["beta", "alpha"]
    assert yaml.safe_load(text)["routes"]["other"] == {"fallbacks": ["alpha/sim-o", "gamma/sim-g"]}


def test_audit_log_says_who_when_why_before_and_after(gw: AdminGateway) -> None:
    before = gw.version()
    gw.change({"op": "drain", "deployment": "alpha/sim-a"}, reason="alpha p99 at 40s, INC-7")
    gw.admin().post(
        "/admin/changes",
        json={"version": gw.version(), "changes": [{"op": "drain", "deployment": "x/y"}]},
    )
    entries = gw.admin().get("/admin/audit").json()["entries"]
    change, rejected = entries[-2:]
    assert change["actor"] == "admin" and change["reason"] == "alpha p99 at 40s, INC-7"
    assert change["action"] == "change" and change["version_before"] == before
    assert change["changes"] == [{"op": "drain", "deployment": "alpha/sim-a"}]
    assert change["before"]["deployments"] == {}
    assert change["after"]["deployments"]["alpha/sim-a"]["drained"] is True
    assert change["at"].endswith("+00:00")
    assert rejected["action"] == "change_rejected" and "x/y" in rejected["problems"][0]
    assert TOKEN not in str(entries)


def test_changes_persist_in_the_state_file_across_a_restart(
    fleet: VendorFleet, tmp_path: Path, gateways: list[AdminGateway]
) -> None:
    state = tmp_path / "writable" / "overrides.json"
    text = config_text(fleet, extra=f"state: {{state_file: '{state}'}}\n")
    path = write_config(tmp_path / "conf", text)
    first = start_in_process(path, watch=False)
    gateways.append(first)
    first.change(
        {"op": "set_order", "alias": "chat", "order": ["beta/sim-b"]},
        {"op": "drain", "deployment": "gamma/sim-g"},
        reason="persist",
    )
    first.stop()
    second = start_in_process(path, watch=False)
    gateways.append(second)
    assert ask(second)[1] == "beta"
    status = second.admin().get("/admin/status").json()
    assert status["persistence"]["kind"] == "file" and status["overrides"]["revision"] == 1
    assert status["overrides"]["deployments"]["gamma/sim-g"]["drained"] is True
    audit = second.admin().get("/admin/audit").json()["entries"]
    assert [e["reason"] for e in audit] == ["persist"]


def test_config_diff_previews_a_file_without_installing_it(gw: AdminGateway) -> None:
    proposed = gw.config_path.read_text().replace(
        "fallbacks: [alpha/sim-a, beta/sim-b]", "fallbacks: [beta/sim-b, alpha/sim-a]"
    )
    result = gw.admin().post("/admin/config/diff", content=proposed).json()
    assert result["valid"] and result["changes"] == [
        "routes.chat.order: 'alpha/sim-a, beta/sim-b' -> 'beta/sim-b, alpha/sim-a'"
    ]
    assert "+    - beta/sim-b\n     - alpha/sim-a\n-    - beta/sim-b\n" in result["diff"]
    broken = proposed.replace("beta/sim-b, alpha", "nobody/x, alpha")
    invalid = gw.admin().post("/admin/config/diff", content=broken).json()
    assert not invalid["valid"]
    assert invalid["problems"][0].startswith("line ")
    assert "routes.chat.fallbacks[0]: unknown provider 'nobody'" in invalid["problems"][0]
    assert ask(gw)[1] == "alpha"
