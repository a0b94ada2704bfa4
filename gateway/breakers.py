"""One circuit breaker per deployment: pybreaker's state machine, used safely from asyncio.

pybreaker is synchronous (its decorator on an `async def` records success when the
coroutine is created) and counts every exit from `calling()` that is not a failure as a
success. So `attempt` admits the call from our own view of the state, and enters
`calling()` only once the outcome is known and says something about the vendor.
On top of pybreaker:
- a failure-rate window, so a brownout (say 30% errors) trips it, not only a run of
  consecutive failures;
- one trial at a time while half-open (pybreaker lets every caller through);
- an open time that doubles each time a flapping vendor trips again, up to a cap.

Outcomes that are not the vendor's fault (429, client errors, a client leaving) are
`neutral`: they count neither as failures nor as successes (a success would close a
half-open breaker), and are left out of the rate window. So are the outcomes of calls
admitted before the breaker last changed state, and every outcome while an operator pins it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from types import TracebackType

import pybreaker

from gateway.config import BreakerConfig
from gateway.errors import GatewayError
from gateway.routing import Availability, Status

StateListener = Callable[[str, str, str], None]  # (deployment id, old state, new state)


class BreakerRejected(GatewayError):
    """The breaker refused the call (open, or its half-open trial is taken)."""

    def __init__(self, status: Status) -> None:
        self.status = status
        super().__init__(status.availability.value)


class _Failure(Exception):
    """Raised inside pybreaker's context so it records a failure."""


class AttemptRecord:
    """Filled in by the caller inside `DeploymentBreaker.attempt`."""

    __slots__ = ("failed", "neutral")

    def __init__(self) -> None:
        self.failed = False
        self.neutral = False


class Attempt:
    """The guard of one call: admits it on entry, records its outcome on a clean exit.
    An exception out of the block records nothing (a trial slot is freed either way)."""

    __slots__ = ("_breaker", "_epoch", "_trial", "record")

    def __init__(self, breaker: DeploymentBreaker) -> None:
        self._breaker = breaker
        self._trial = False
        self._epoch = 0
        self.record = AttemptRecord()

    def __enter__(self) -> AttemptRecord:
        self._trial, self._epoch = self._breaker._admit()
        return self.record

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._trial:
            self._breaker._trial_busy = False
        if exc_type is None:
            self._breaker._record(self.record, self._epoch)


class _Transitions(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: DeploymentBreaker) -> None:
        self._owner = owner

    def state_change(self, cb: object, old: object, new: object) -> None:
        old_name = getattr(old, "name", "closed") if old is not None else "closed"
        self._owner._on_state_change(old_name, getattr(new, "name", ""))


class DeploymentBreaker:
    def __init__(
        self,
        deployment_id: str,
        config: BreakerConfig,
        clock: Callable[[], float] = time.monotonic,
        listeners: tuple[StateListener, ...] = (),
    ) -> None:
        self.deployment_id = deployment_id
        self.config = config
        self._clock = clock
        self._listeners = listeners
        self._window: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        self._trial_busy = False
        self._opens_in_a_row = 0
        self._last_closed_at: float | None = None
        self._epoch = 0  # bumped on every state change
        self.forced: str | None = None  # "open" | "closed" when an operator pins it
        self.transitions = 0
        self._cb = pybreaker.CircuitBreaker(
            fail_max=config.consecutive_failures,
            reset_timeout=config.open_seconds,
            throw_new_error_on_trip=False,
            listeners=[_Transitions(self)],
            name=deployment_id,
        )

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half-open' as pybreaker stores it."""
        return str(self._cb.current_state)

    @property
    def open_seconds(self) -> float:
        return float(self._cb.reset_timeout)

    def status(self, now: float) -> Status:
        if self.forced == "open":
            return Status(Availability.BREAKER_OPEN, None, "forced open by an operator")
        state = self.state
        if state == "closed" or self.forced == "closed":
            return Status(Availability.AVAILABLE)
        if state == "open":
            remaining = self._open_remaining()
            if remaining > 0:
                return Status(Availability.BREAKER_OPEN, now + remaining, "breaker open")
        if self._trial_busy:
            return Status(Availability.TRIAL_BUSY, None, "half-open trial in flight")
        return Status(Availability.TRIAL, None, "half-open: next call is the trial")

    def _open_remaining(self) -> float:
        opened_at = self._cb._state_storage.opened_at  # pybreaker exposes no public getter
        if opened_at is None:
            return 0.0
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        return max(0.0, self.open_seconds - elapsed)

    def attempt(self) -> Attempt:
        """Guard one call (`with breaker.attempt() as record:`). Entering raises
        BreakerRejected when the call may not run; a clean exit records `record`."""
        return Attempt(self)

    def _admit(self) -> tuple[bool, int]:
        """(is the trial, state epoch) for a call allowed to run now."""
        status = self.status(self._clock())
        if not status.availability.routable:
            raise BreakerRejected(status)
        trial = status.availability is Availability.TRIAL
        if trial:
            self._trial_busy = True
            if self.state == "open":
                self._cb.half_open()  # the open time is over: this call is the trial
        return trial, self._epoch

    def _record(self, record: AttemptRecord, epoch: int) -> None:
        if record.neutral or self.forced is not None or epoch != self._epoch:
            return
        # A success while closed with no failures counted changes nothing in pybreaker
        # (its counter is already 0 and our listener ignores successes): skip the call.
        if record.failed or self._cb.fail_counter or self.state != "closed":
            with suppress(_Failure), self._cb.calling():
                if record.failed:
                    raise _Failure
        self._observe(record.failed)

    def _observe(self, failed: bool) -> None:
        now = self._clock()
        self._window.append((now, failed))
        self._window_failures += failed
        horizon = now - self.config.window_seconds
        while self._window and self._window[0][0] < horizon:
            self._window_failures -= self._window.popleft()[1]
        calls = len(self._window)
        if (
            failed
            and self.state == "closed"
            and calls >= self.config.min_calls
            and self._window_failures / calls >= self.config.failure_rate
        ):
            self._cb.open()

    def failure_rate(self) -> tuple[int, int]:
        """(failures, calls) in the current window."""
        return self._window_failures, len(self._window)

    def force(self, state: str | None) -> None:
        """Pin the breaker open or closed (operators), or None to let it run again."""
        self.forced = state
        if state == "open":
            self._cb.open()
        elif state == "closed" or state is None:
            self._cb.close()

    def _on_state_change(self, old: str, new: str) -> None:
        now = self._clock()
        self.transitions += 1
        self._epoch += 1
        if new == "open":
            self._window.clear()
            self._window_failures = 0
            if self.forced is None:
                self._grow_open_time(old, now)
        elif new == "closed":
            self._last_closed_at = now
        for listener in self._listeners:
            listener(self.deployment_id, old, new)

    def _grow_open_time(self, old: str, now: float) -> None:
        # Only a trip after a stable closed period starts over; a failed half-open trial
        # is the same outage going on, however long ago the breaker last closed.
        closed_for = now - self._last_closed_at if self._last_closed_at is not None else 0.0
        if old == "closed" and closed_for > self.config.max_open_seconds:
            self._opens_in_a_row = 0
        self._opens_in_a_row += 1
        grown = self.config.open_seconds * 2 ** (self._opens_in_a_row - 1)
        self._cb.reset_timeout = min(self.config.max_open_seconds, grown)
