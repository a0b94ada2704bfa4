"""Where the overrides document and the audit log live.

`OverrideStore` is the one interface (pybreaker's storage pattern); `MemoryStore` keeps
them in this process, `FileStore` in a local state file (single node), `RedisStore`
(redis_store.py) in Redis shared by every replica. `save` is a compare-and-set on the
document's revision and appends the audit entry with it.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from gateway.control.audit import AuditEntry
from gateway.control.overrides import Overrides
from gateway.errors import GatewayError


class StoreUnavailable(GatewayError):
    """The store cannot be read or written; the message names the cause and the fix."""


class OverrideStore(Protocol):
    kind: str  # memory | file | redis
    shared: bool  # other replicas change it too

    def describe(self) -> str: ...
    async def load(self) -> Overrides: ...
    async def revision(self) -> int: ...
    async def save(self, expected: int, new: Overrides, entry: AuditEntry) -> bool: ...
    async def record(self, entry: AuditEntry) -> None: ...
    async def audit(self, limit: int) -> list[AuditEntry]: ...
    async def aclose(self) -> None: ...


class MemoryStore:
    kind = "memory"
    shared = False

    def __init__(self) -> None:
        self._doc = Overrides()
        self._audit: list[AuditEntry] = []

    def describe(self) -> str:
        return "memory (lost at restart: set state.state_file or state.redis_url to keep it)"

    async def load(self) -> Overrides:
        return self._doc

    async def revision(self) -> int:
        return self._doc.revision

    async def save(self, expected: int, new: Overrides, entry: AuditEntry) -> bool:
        if self._doc.revision != expected:
            return False
        self._doc = new
        self._audit.append(entry)
        return True

    async def record(self, entry: AuditEntry) -> None:
        self._audit.append(entry)

    async def audit(self, limit: int) -> list[AuditEntry]:
        return self._audit[-limit:] if limit > 0 else []

    async def aclose(self) -> None:
        pass


class FileStore:
    """A JSON state file written atomically, and a JSON-lines audit log beside it.

    One gateway process per file: the revision check guards this process's writers only.
    """

    kind = "file"
    shared = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.audit_path = path.with_name(path.name + ".audit.jsonl")
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"state file {self.path} (audit log {self.audit_path})"

    def _fix(self, exc: OSError) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot use state file {self.path}: {exc.strerror or exc}; set state.state_file "
            "to a writable path (a mounted config folder is often read-only, e.g. use /tmp)"
        )

    def _read(self) -> Overrides:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return Overrides()
        except OSError as exc:
            raise self._fix(exc) from exc
        try:
            return Overrides.model_validate_json(text)
        except ValidationError as exc:
            raise StoreUnavailable(
                f"state file {self.path} is not a valid overrides document "
                f"({exc.error_count()} problems); fix it, or move it away to start from the "
                "file config alone"
            ) from exc

    def _write(self, doc: Overrides, entry: AuditEntry | None) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with tmp.open("w", encoding="utf-8") as out:
                out.write(doc.model_dump_json(indent=2))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            if entry is not None:
                self._append(entry)
        except OSError as exc:
            raise self._fix(exc) from exc

    def _append(self, entry: AuditEntry) -> None:
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        with self.audit_path.open("a", encoding="utf-8") as out:
            out.write(entry.model_dump_json() + "\n")
            out.flush()
            os.fsync(out.fileno())

    async def load(self) -> Overrides:
        return await asyncio.to_thread(self._read)

    async def revision(self) -> int:
        return (await self.load()).revision

    async def save(self, expected: int, new: Overrides, entry: AuditEntry) -> bool:
        async with self._lock:
            if (await self.load()).revision != expected:
                return False
            await asyncio.to_thread(self._write, new, entry)
            return True

    async def keep(self, doc: Overrides) -> None:
        """Write `doc` without an audit entry (a cache of what Redis last said)."""
        async with self._lock:
            await asyncio.to_thread(self._write, doc, None)

    async def record(self, entry: AuditEntry) -> None:
        try:
            await asyncio.to_thread(self._append, entry)
        except OSError as exc:
            raise self._fix(exc) from exc

    async def audit(self, limit: int) -> list[AuditEntry]:
        def read() -> list[AuditEntry]:
            try:
                lines = self.audit_path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                return []
            except OSError as exc:
                raise self._fix(exc) from exc
            return [AuditEntry.model_validate(json.loads(line)) for line in lines[-limit:] if line]

        return await asyncio.to_thread(read) if limit > 0 else []

    async def aclose(self) -> None:
        pass
