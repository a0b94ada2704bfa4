"""The audit log entry: who changed what, when, why, and the config before and after.

Entries are appended, never edited: to the local `<state_file>.audit.jsonl`, to a Redis
list shared by the replicas, or (with neither) kept in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Action = Literal["change", "change_rejected", "reload", "reload_rejected"]


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: str  # ISO 8601, UTC
    actor: str  # the admin token's name, or what reloaded: file, sighup
    replica: str  # host:pid that made or saw the change
    action: Action
    reason: str = ""
    changes: list[dict[str, Any]] = Field(default_factory=list)  # operations, as sent
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    version_before: str = ""
    version_after: str = ""
    problems: list[str] = Field(default_factory=list)  # why it was rejected
    notes: list[str] = Field(default_factory=list)  # what a reload changed or dropped


def timestamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")


def describe(entry: AuditEntry) -> str:
    """One line for a terminal."""
    what = ", ".join(_op_text(c) for c in entry.changes) or "; ".join(entry.notes[:3])
    if entry.problems:
        what += f" REJECTED: {'; '.join(entry.problems[:3])}"
    reason = f" reason: {entry.reason}" if entry.reason else ""
    versions = f"{entry.version_before or '?'} -> {entry.version_after or '(unchanged)'}"
    return f"{entry.at} {entry.actor}@{entry.replica} {entry.action} [{versions}] {what}{reason}"


def _op_text(change: dict[str, Any]) -> str:
    args = " ".join(f"{k}={v}" for k, v in change.items() if k != "op")
    return f"{change.get('op')} {args}".strip()
