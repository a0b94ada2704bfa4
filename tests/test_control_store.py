"""One contract suite over every overrides store (memory, local file, real Redis), plus the
errors each store gives when it cannot work."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.control.audit import AuditEntry, describe
from gateway.control.overrides import DeploymentFlags, Overrides
from gateway.control.redis_store import RedisStore, masked_url
from gateway.control.store import FileStore, MemoryStore, OverrideStore, StoreUnavailable
from tests.admin_harness import redis_namespace

__all__ = ["redis_namespace"]


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        at=f"2025-01-01T00:00:0{n}", actor="sre", replica="h:1", action="change", reason=f"r{n}"
    )


def doc(revision: int, drained: str = "a/m") -> Overrides:
    return Overrides(revision=revision, deployments={drained: DeploymentFlags(drained=True)})


@pytest.fixture(params=["memory", "file", "redis"])
def store_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.fixture
async def store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[OverrideStore]:
    made: OverrideStore
    if store_kind == "memory":
        made = MemoryStore()
    elif store_kind == "file":
        made = FileStore(tmp_path / "state" / "overrides.json")
    else:
        url, prefix = request.getfixturevalue("redis_namespace")
        made = RedisStore(url, prefix)
    yield made
    await made.aclose()


async def test_empty_store_reads_as_revision_zero(store: OverrideStore) -> None:
    assert await store.load() == Overrides()
    assert await store.revision() == 0
    assert await store.audit(10) == []


async def test_save_is_compare_and_set_on_the_revision(store: OverrideStore) -> None:
    assert await store.save(0, doc(1), entry(1))
    assert await store.revision() == 1
    assert await store.load() == doc(1)
    assert not await store.save(0, doc(1, "b/m"), entry(2))  # stale: someone saved first
    assert await store.load() == doc(1)
    assert await store.save(1, doc(2, "c/m"), entry(3))
    assert [e.reason for e in await store.audit(10)] == ["r1", "r3"]


async def test_only_one_of_two_racing_writers_wins(store: OverrideStore) -> None:
    results = await asyncio.gather(
        store.save(0, doc(1, "x/1"), entry(1)), store.save(0, doc(1, "y/1"), entry(2))
    )
    assert sorted(results) == [False, True]
    assert len(await store.audit(10)) == 1


async def test_audit_is_appended_and_read_newest_last(store: OverrideStore) -> None:
    for n in range(1, 6):
        await store.record(entry(n))
    assert [e.reason for e in await store.audit(3)] == ["r3", "r4", "r5"]
    assert "sre@h:1 change" in describe((await store.audit(1))[0])


def test_file_store_writes_json_and_jsonl_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    store = FileStore(path)
    assert asyncio.run(store.save(0, doc(1), entry(1)))
    assert Overrides.model_validate_json(path.read_text()) == doc(1)
    assert len((tmp_path / "overrides.json.audit.jsonl").read_text().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_file_store_errors_name_the_fix(tmp_path: Path) -> None:
    corrupt = tmp_path / "overrides.json"
    corrupt.write_text('{"revision": "many"}')
    with pytest.raises(StoreUnavailable, match=r"not a valid overrides document.*move it away"):
        asyncio.run(FileStore(corrupt).load())
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable, match=r"set state\.state_file to a writable path"):
        asyncio.run(FileStore(blocker / "sub" / "overrides.json").save(0, doc(1), entry(1)))


async def test_redis_store_unreachable_fails_fast_with_the_fix() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore(f"redis://:p4ssw0rd-secret@127.0.0.1:{port}/0", "x")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreUnavailable) as caught:
        await store.revision()
    assert loop.time() - started < 1.0
    message = str(caught.value)
    assert "p4ssw0rd" not in message
    assert f"redis://:***@127.0.0.1:{port}/0 is unavailable" in message
    assert "keeps serving with the last overrides" in message
    await store.aclose()


def test_masked_url_hides_only_the_password() -> None:
    assert masked_url("redis://u:pw@h:1/2") == "redis://u:***@h:1/2"
    assert masked_url("rediss://h") == "rediss://h"
