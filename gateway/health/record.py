"""DeploymentHealth: what probes and real traffic have said about one deployment.

One lives on each `DeploymentRuntime` (`runtime.health`). Probes and the passive
observer write to it; `GatewayState.status` reads `ejection(now)` so routing skips a
deployment that fails its probes or was ejected as an outlier. Times are the state's
monotonic clock; every method takes `now` so it is tested on a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.health.config import OutlierConfig, ProbeConfig
from gateway.health.outlier import OutlierWindow, Verdict, judge
from gateway.health.samples import Samples
from gateway.routing import Availability, Status


@dataclass(slots=True)
class ProbeState:
    healthy: bool = True
    ok_streak: int = 0
    fail_streak: int = 0
    since: float | None = None  # when `healthy` last changed
    last_at: float | None = None
    last_error: str = ""
    total: int = 0
    failures: int = 0


@dataclass(slots=True)
class LastError:
    at: float
    reason: str
    message: str


@dataclass(slots=True)
class DeploymentHealth:
    probe: ProbeState = field(default_factory=ProbeState)
    window: OutlierWindow = field(default_factory=OutlierWindow)
    ejected_until: float = 0.0
    ejected_since: float | None = None
    ejected_why: str = ""
    ejected_success_rate: float = 0.0
    ejections: dict[str, int] = field(default_factory=dict)  # cause -> count
    ejections_in_a_row: int = 0
    calls: int = 0  # successes + failures since start (neutral outcomes left out)
    failures: int = 0
    neutral: int = 0
    last_error: LastError | None = None
    ttft_ms: Samples = field(default_factory=Samples)
    latency_ms: Samples = field(default_factory=Samples)
    breaker_since: float | None = None

    def ejection(self, now: float) -> Status | None:
        """The EJECTED status routing should see, or None when health has no objection."""
        if not self.probe.healthy:
            why = f"health probe failed {self.probe.fail_streak} times in a row"
            if self.probe.last_error:
                why += f": {self.probe.last_error}"
            return Status(Availability.EJECTED, None, why, 0.0)
        if self.ejected_until > now:
            return Status(
                Availability.EJECTED,
                self.ejected_until,
                self.ejected_why,
                self.ejected_success_rate,
            )
        return None

    def record_probe(self, ok: bool, error: str, now: float, config: ProbeConfig) -> bool:
        """Count one probe; True when it changed the deployment's probe health."""
        probe = self.probe
        probe.total += 1
        probe.last_at = now
        if ok:
            probe.ok_streak += 1
            probe.fail_streak = 0
            flip = not probe.healthy and probe.ok_streak >= config.healthy_threshold
        else:
            probe.failures += 1
            probe.fail_streak += 1
            probe.ok_streak = 0
            probe.last_error = error
            flip = probe.healthy and probe.fail_streak >= config.unhealthy_threshold
            if flip:
                self.ejections["probe"] = self.ejections.get("probe", 0) + 1
        if flip:
            probe.healthy = not probe.healthy
            probe.since = now
        return flip

    def record_attempt(
        self,
        verdict: Verdict,
        reason: str,
        message: str,
        duration_ms: float,
        now: float,
        config: OutlierConfig,
    ) -> bool:
        """Count one finished attempt; True when it got the deployment ejected.

        An attempt that started before the breaker last changed state is counted but not
        judged (as the breaker does): the breaker has already acted on what it says.
        """
        if verdict is Verdict.NEUTRAL:
            self.neutral += 1
            return False
        failed = verdict is Verdict.FAILURE
        self.calls += 1
        if failed:
            self.failures += 1
            self.last_error = LastError(now, reason, message)
        else:
            self.ttft_ms.add(duration_ms, config.ttft_ewma_alpha)
        started = now - duration_ms / 1000
        if not config.enabled or (self.breaker_since is not None and started < self.breaker_since):
            return False
        slow = not failed and duration_ms > config.slow_call_seconds * 1000
        self.window.add(now, failed, slow, config.window_seconds)
        if self.ejected_until > now:
            return False  # already out: a demoted last resort's calls do not extend it
        return self._maybe_eject(now, config)

    def _maybe_eject(self, now: float, config: OutlierConfig) -> bool:
        if self.ejected_since is not None and now - self.ejected_until > config.max_eject_seconds:
            self.ejections_in_a_row = 0  # a stable period since the last ejection: start over
        ejection = judge(self.window, config, self.ejections_in_a_row)
        if ejection is None:
            return False
        self.ejections_in_a_row += 1
        self.ejections[ejection.cause] = self.ejections.get(ejection.cause, 0) + 1
        self.ejected_since = now
        self.ejected_until = now + ejection.seconds
        self.ejected_why = f"ejected for {ejection.seconds:g}s: {ejection.why}"
        self.ejected_success_rate = ejection.success_rate
        self.window.clear()
        return True

    def record_latency(self, ms: float, alpha: float) -> None:
        self.latency_ms.add(ms, alpha)

    @property
    def success_rate(self) -> float | None:
        return None if not self.calls else (self.calls - self.failures) / self.calls
