"""The library of ready scenarios shipped in `gateway/chaos/scenarios/`."""

from __future__ import annotations

from pathlib import Path

SCENARIO_DIR = Path(__file__).parent / "scenarios"


def scenario_paths() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    """A path as given, or the library scenario of that name (`hang` -> scenarios/hang.yaml)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return path
    return SCENARIO_DIR / f"{name_or_path}.yaml"
