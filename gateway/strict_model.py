"""The base of every config and scenario section: unknown keys are errors (a typo in
providers.yaml must not pass silently as a default) and values never change once read."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
