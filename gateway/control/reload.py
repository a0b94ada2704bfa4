"""Reading providers.yaml for a reload: the text, its hash (to ignore events that changed
nothing), and the validated config or every problem with its line."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config import LoadedConfig, load_text
from gateway.control.lines import with_lines
from gateway.errors import ConfigError
from gateway.telemetry.config import TelemetryConfig


@dataclass(slots=True)
class ReloadOutcome:
    at: str
    trigger: str  # file | sighup | admin
    outcome: str  # accepted | unchanged | rejected
    version: str  # the version serving afterwards
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


@dataclass(frozen=True, slots=True)
class FileRead:
    text_hash: str | None
    loaded: LoadedConfig | None
    problems: list[str]


def text_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def read_config(path: Path, env: Mapping[str, str] | None) -> FileRead:
    """Read and validate `path` (blocking: run it in a thread)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return FileRead(None, None, [f"cannot read the file: {exc.strerror or exc}"])
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return FileRead(digest, None, [f"the file is not UTF-8 text ({exc.reason})"])
    try:
        return FileRead(digest, load_text(text, str(path), env), [])
    except ConfigError as exc:
        return FileRead(digest, None, with_lines(exc.problems, text))


def restart_notes(initial: LoadedConfig, file: LoadedConfig) -> list[str]:
    """Sections read once at start: a change is accepted but waits for a restart."""
    notes = [
        f"{section}: changed in the file; takes effect at the next restart"
        for section in ("server", "admin", "state")
        if getattr(initial.config, section) != getattr(file.config, section)
    ]
    if _read_at_start(initial.config.telemetry) != _read_at_start(file.config.telemetry):
        notes.append(
            "telemetry: changed in the file; takes effect at the next restart "
            "(all but logs.requests and logs.prompts, which apply at once)"
        )
    return notes


def _read_at_start(telemetry: TelemetryConfig) -> dict[str, Any]:
    """The telemetry settings that build providers and exporters at start."""
    return telemetry.model_dump(exclude={"logs": {"requests", "prompts"}})
