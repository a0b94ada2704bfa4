"""The admin API (its own listener, loopback by default; every route needs a bearer token).

    GET  /admin/status        version, last reload and rejections, persistence health
    GET  /admin/routes        aliases and their deployments with live state
    GET  /admin/config        the effective config (file + runtime overrides) as YAML
    POST /admin/config/diff   body: a providers.yaml; what would change against the running one
    POST /admin/changes       {"version", "reason", "changes": [...]}: one atomic change
    POST /admin/reload        re-read providers.yaml now (like SIGHUP)
    GET  /admin/audit         the audit log, newest last (?limit=N)

Changes name the version they were based on (`If-Match` or `version`); a stale one gets
409. Errors use the OpenAI error shape. More routers (fault injection, say) go in with
`app.admin.include_router(router)`: the token check covers them, and `require_admin`
can be imported to name the caller.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from gateway.api.responses import error_body
from gateway.control.overrides import ChangeRequest, Disable, Drain, ForceBreaker
from gateway.control.plane import ControlPlane, VersionConflict, VersionRequired
from gateway.control.render import render_yaml
from gateway.control.settings import AdminConfig
from gateway.control.store import StoreUnavailable
from gateway.control.views import preview, routes_view, status_view
from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class AdminTokens:
    """Token value -> token name, read from the environment at start."""

    by_value: dict[str, str]
    env_names: tuple[str, ...]

    @classmethod
    def from_env(cls, settings: AdminConfig, env: Mapping[str, str] | None = None) -> AdminTokens:
        source = os.environ if env is None else env
        by_value = {source[var]: name for name, var in settings.tokens.items() if source.get(var)}
        return cls(by_value, tuple(settings.tokens.values()))


class AdminError(Exception):
    def __init__(self, status: int, message: str, code: str, **extra: Any) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra
        super().__init__(message)


async def require_admin(request: Request) -> str:
    """The caller's token name (who, in the audit log); 401/503 when it cannot be."""
    tokens: AdminTokens = request.app.state.admin_tokens
    names = " or ".join(tokens.env_names)
    if not tokens.by_value:
        raise AdminError(
            503,
            f"The admin API has no token configured: set {names} in the gateway's environment "
            "and restart it.",
            "admin_token_not_configured",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AdminError(
            401,
            f"Missing admin token: send 'Authorization: Bearer <the value of {names}>'.",
            "missing_admin_token",
        )
    for value, name in tokens.by_value.items():
        if hmac.compare_digest(given.strip().encode(), value.encode()):
            return name
    raise AdminError(
        401,
        f"Invalid admin token: use the value of {names} from the gateway's environment.",
        "invalid_admin_token",
    )


def _error(exc: AdminError) -> Response:
    error_type = {401: "authentication_error", 503: "api_error"}.get(
        exc.status, "invalid_request_error"
    )
    headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
    body = error_body(exc.message, error_type, exc.code, None, **exc.extra)
    return Response(body, exc.status, headers=headers, media_type="application/json")


def _translate(exc: Exception) -> AdminError:
    if isinstance(exc, VersionRequired):
        return AdminError(428, str(exc), "version_required")
    if isinstance(exc, VersionConflict):
        return AdminError(409, str(exc), "version_conflict", current_version=exc.current)
    if isinstance(exc, ConfigError):
        message = "The change was rejected; nothing was applied: " + "; ".join(exc.problems)
        return AdminError(400, message, "invalid_change", problems=exc.problems)
    if isinstance(exc, StoreUnavailable):
        return AdminError(503, f"Nothing was applied: {exc}", "state_store_unavailable")
    raise exc


def _validation(exc: RequestValidationError) -> AdminError:
    problems = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if p != "body"]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        problems.append(f"{path or '(body)'}: {err['msg']}")
    message = "Invalid request body: " + "; ".join(problems)
    return AdminError(400, message, "invalid_value", problems=problems)


def _versioned(data: Any, version: str) -> JSONResponse:
    return JSONResponse(data, headers={"etag": f'"{version}"', "x-gateway-config-version": version})


def admin_app(plane: ControlPlane, tokens: AdminTokens) -> FastAPI:
    app = FastAPI(
        title="failover-gateway admin",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(require_admin)],
    )
    app.state.admin_tokens = tokens

    async def admin_error(_: Request, exc: AdminError) -> Response:
        return _error(exc)

    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return _error(_validation(exc))

    async def http_error(_: Request, exc: HTTPException) -> Response:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return _error(AdminError(exc.status_code, str(exc.detail), code))

    app.add_exception_handler(AdminError, admin_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    _routes(app, plane)
    return app


def _routes(app: FastAPI, plane: ControlPlane) -> None:
    @app.get("/admin/status")
    async def status() -> JSONResponse:
        return _versioned(status_view(plane), plane.active.version)

    @app.get("/admin/routes")
    async def routes() -> JSONResponse:
        return _versioned(routes_view(plane), plane.active.version)

    @app.get("/admin/config")
    async def config() -> Response:
        active = plane.active
        text = render_yaml(active.file, active.overrides, active.version)
        headers = {"etag": f'"{active.version}"', "x-gateway-config-version": active.version}
        return Response(text, media_type="application/yaml", headers=headers)

    @app.post("/admin/config/diff")
    async def diff(request: Request) -> JSONResponse:
        text = (await request.body()).decode("utf-8", "replace")
        return _versioned(preview(plane, text), plane.active.version)

    @app.post("/admin/changes")
    async def change(
        body: ChangeRequest,
        actor: str = Depends(require_admin),
        if_match: str | None = Header(default=None),
    ) -> JSONResponse:
        try:
            active = await plane.change(body, if_match, actor)
        except (VersionRequired, VersionConflict, ConfigError, StoreUnavailable) as exc:
            raise _translate(exc) from None
        touched = [
            c.deployment for c in body.changes if isinstance(c, Drain | Disable | ForceBreaker)
        ]
        runtimes = plane.state.runtimes
        in_flight = {d: runtimes[d].in_flight for d in touched if d in runtimes}
        result = {
            "version": active.version,
            "revision": active.overrides.revision,
            "overrides": active.overrides.model_dump(mode="json"),
            "in_flight": in_flight,
        }
        return _versioned(result, active.version)

    @app.post("/admin/reload")
    async def reload(actor: str = Depends(require_admin)) -> JSONResponse:
        outcome = await plane.reload("admin", actor)
        if outcome.outcome == "rejected":
            raise AdminError(
                400,
                f"The config was rejected; still serving {outcome.version}: {outcome.message}",
                "invalid_config",
                problems=outcome.problems,
            )
        result = {"outcome": outcome.outcome, "version": outcome.version, "notes": outcome.notes}
        return _versioned(result, outcome.version)

    @app.get("/admin/audit")
    async def audit(limit: int = Query(default=100, ge=1, le=10000)) -> JSONResponse:
        try:
            entries = await plane.audit(limit)
        except StoreUnavailable as exc:
            raise _translate(exc) from None
        return _versioned(
            {"entries": [e.model_dump(mode="json") for e in entries]}, plane.active.version
        )
