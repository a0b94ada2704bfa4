"""Overrides and the audit log in Redis, shared by every replica.

Keys (under `state.redis_prefix`): `<prefix>:overrides` (the JSON document),
`<prefix>:overrides:revision` (polled by every replica), `<prefix>:audit` (a list,
appended only). A save is one Lua script: compare the revision, write the document,
bump the revision, append the audit entry, so two replicas can never both win.
Timeouts are short and redis-py's own retries are off: Redis being slow or gone must
cost an admin call a second at most, and a request nothing (requests never touch it).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.control.audit import AuditEntry
from gateway.control.overrides import Overrides
from gateway.control.store import StoreUnavailable
from gateway.errors import redact

_SAVE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[4])
return 1
"""
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


def masked_url(url: str) -> str:
    """The URL with its password hidden (it may appear in status and errors)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username or ''}:***@" if parts.password else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


class RedisStore:
    kind = "redis"
    shared = True

    def __init__(self, url: str, prefix: str, timeout: float = 1.0) -> None:
        self.url = masked_url(url)
        self.prefix = prefix
        self._revision_key = f"{prefix}:overrides:revision"
        self._doc_key = f"{prefix}:overrides"
        self._audit_key = f"{prefix}:audit"
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=timeout / 2,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def describe(self) -> str:
        return f"redis {self.url} (keys {self.prefix}:*)"

    def _down(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"Redis at {self.url} is unavailable ({type(exc).__name__}: {redact(str(exc))}); the "
            "gateway keeps serving with the last overrides it knew. Check that Redis runs and "
            "that state.redis_url (REDIS_URL) points at it"
        )

    async def load(self) -> Overrides:
        try:
            _, doc = await self._client.mget(self._revision_key, self._doc_key)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._down(exc) from exc
        if doc is None:
            return Overrides()
        try:
            return Overrides.model_validate_json(doc)
        except ValidationError as exc:
            raise StoreUnavailable(
                f"the overrides document in Redis ({self._doc_key}) is not valid "
                f"({exc.error_count()} problems); fix it or delete the key"
            ) from exc

    async def revision(self) -> int:
        try:
            value = await self._client.get(self._revision_key)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._down(exc) from exc
        return int(value or 0)

    async def save(self, expected: int, new: Overrides, entry: AuditEntry) -> bool:
        keys = [self._revision_key, self._doc_key, self._audit_key]
        args = [str(expected), new.model_dump_json(), str(new.revision), entry.model_dump_json()]
        try:
            done = await self._client.eval(_SAVE, 3, *keys, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._down(exc) from exc
        return bool(done)

    async def seed(self, doc: Overrides) -> bool:
        """Write `doc` only if Redis holds no document (it lost its data)."""
        keys = [self._revision_key, self._doc_key]
        try:
            done = await self._client.eval(_SEED, 2, *keys, doc.model_dump_json(), doc.revision)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._down(exc) from exc
        return bool(done)

    async def record(self, entry: AuditEntry) -> None:
        try:
            await self._client.rpush(self._audit_key, entry.model_dump_json())
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._down(exc) from exc

    async def audit(self, limit: int) -> list[AuditEntry]:
        if limit <= 0:
            return []
        try:
            lines = await self._client.lrange(self._audit_key, -limit, -1)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._down(exc) from exc
        return [AuditEntry.model_validate_json(line) for line in lines]

    async def aclose(self) -> None:
        await self._client.aclose()
