"""Test and benchmark controls: faults, latency, the import rate limit, counters and the log.

All state here is guarded by one lock; nothing here sleeps while holding it.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from dbx_promote.emulator.store import ApiError, invalid

if TYPE_CHECKING:
    from dbx_promote.emulator.jobs import Jobs

WRITE_ENDPOINTS = frozenset({"import", "mkdirs", "delete"})
_T = TypeVar("_T")


def _from_dict(cls: type[_T], data: dict[str, Any]) -> _T:
    """``cls(**data)`` for a dataclass, refusing unknown fields with a ValueError."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    return cls(**data)


# Permissions PUT and PATCH change the workspace too, so they count as writes.
WRITE_METHODS = frozenset({"PUT", "PATCH"})


def is_write(endpoint: str, method: str | None) -> bool:
    """Whether a request changes the workspace (import, mkdirs, delete, an ACL PUT/PATCH)."""
    return endpoint in WRITE_ENDPOINTS or method in WRITE_METHODS


@dataclass(frozen=True)
class Fault:
    """A failure to inject into matching requests.

    A request matches when ``endpoint`` (a regex, full match, on the API path after
    ``/api/2.0/workspace/``, e.g. ``"import"`` or ``"import|export"``, or ``jobs/`` plus
    the path after ``/api/2.x/jobs/``, e.g. ``"jobs/runs/submit"``) and ``path_glob``
    (fnmatch on the request's workspace path, without a ``/Workspace`` prefix) both match,
    ``method`` (e.g. ``"PUT"``) is the request's, and, with ``writes_only``, the request is
    a write (import, mkdirs, delete, or a permissions PUT/PATCH). ``None`` matches
    anything. Permissions requests are named ``permissions/<type>`` (plus
    ``/permissionLevels``) and their path is the object's. Counting from when the fault
    was added, matching requests number ``nth`` to ``nth + times - 1`` fail (``times=-1``: every one from ``nth`` on). A failing
    request gets ``status`` and ``{"error_code", "message"}``, plus ``Retry-After`` if
    ``retry_after`` is set; with ``drop=True`` the socket is closed with no response.
    With ``after=True`` the request is applied first and only its answer is replaced:
    a write that landed although the client saw it fail.
    """

    endpoint: str | None = None
    path_glob: str | None = None
    writes_only: bool = False
    nth: int = 1
    times: int = 1
    status: int = 500
    error_code: str = "INTERNAL_ERROR"
    message: str = "Fault injected by the dbx-promote emulator."
    retry_after: int | None = None
    drop: bool = False
    after: bool = False
    method: str | None = None

    def __post_init__(self) -> None:
        if self.nth < 1:
            raise ValueError("Fault.nth must be >= 1")
        if self.times == 0 or self.times < -1:
            raise ValueError("Fault.times must be >= 1, or -1 for forever")
        if self.endpoint is not None:
            try:
                re.compile(self.endpoint)
            except re.error as exc:
                raise ValueError(f"Fault.endpoint is not a valid regex: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Build from the control API's JSON; raise ValueError/TypeError on bad fields."""
        return _from_dict(cls, data)

    def matches(self, endpoint: str, path: str | None, method: str | None = None) -> bool:
        """Whether a ``method`` request to ``endpoint`` on ``path`` is one this fault counts."""
        if self.writes_only and not is_write(endpoint, method):
            return False
        if self.method is not None and method != self.method:
            return False
        if self.endpoint is not None and not re.fullmatch(self.endpoint, endpoint):
            return False
        return self.path_glob is None or (
            path is not None and fnmatch.fnmatchcase(path, self.path_glob)
        )


JOB_RESULT_STATES = ("SUCCESS", "FAILED", "TIMEDOUT", "CANCELED")


@dataclass(frozen=True)
class JobRule:
    """A scripted outcome for notebook task runs whose notebook matches ``path_glob``.

    ``path_glob`` is fnmatch on the canonical notebook path (no ``/Workspace`` prefix;
    ``*`` also matches ``/``). A matching task runs for ``duration_s`` seconds (cut short
    by its timeout, which makes it TIMEDOUT, or by a cancel) and then ends in
    ``result_state`` with ``result`` as its ``dbutils.notebook.exit`` value, or with
    ``error`` / ``error_trace`` when FAILED, and ``logs``. A rule applies to ``times``
    runs from when it was added (-1: every one). The first matching rule added wins; a
    rule beats executing the notebook.
    """

    path_glob: str = "*"
    result_state: str = "SUCCESS"
    result: str | None = None
    error: str | None = None
    error_trace: str | None = None
    logs: str | None = None
    duration_s: float = 0.0
    times: int = -1

    def __post_init__(self) -> None:
        if self.result_state not in JOB_RESULT_STATES:
            raise ValueError(f"JobRule.result_state must be one of {', '.join(JOB_RESULT_STATES)}")
        if self.duration_s < 0:
            raise ValueError("JobRule.duration_s must be >= 0")
        if self.times == 0 or self.times < -1:
            raise ValueError("JobRule.times must be >= 1, or -1 for forever")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRule:
        """Build from the control API's JSON; raise ValueError/TypeError on bad fields."""
        return _from_dict(cls, data)

    def matches(self, path: str) -> bool:
        """Whether a task run of the notebook at canonical ``path`` follows this rule."""
        return fnmatch.fnmatchcase(path, self.path_glob)


class _ArmedFault:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.seen = 0

    def hit(self) -> bool:
        self.seen += 1
        f = self.fault
        return self.seen >= f.nth and (f.times == -1 or self.seen < f.nth + f.times)


class TokenBucket:
    """A token bucket: ``rate`` requests per second, bursts up to ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Controls:
    """Run-time settings, faults and request statistics of one emulator."""

    def __init__(self, latency_ms: float = 0.0, import_rate_limit: float | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[_ArmedFault] = []
        self.latency_ms = float(latency_ms)
        self.directory_import = "accept"
        self._bucket: TokenBucket | None = None
        self.set_import_rate_limit(import_rate_limit)
        self._reset_stats()

    def _reset_stats(self) -> None:
        self._seq = 0
        self._total = 0
        self._reads = 0
        self._writes = 0
        self._by_endpoint: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()
        self._log: list[dict[str, Any]] = []

    # --- settings ----------------------------------------------------------------------

    def set_latency(self, ms: float) -> None:
        """Add ``ms`` milliseconds to every counted request."""
        if ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self.latency_ms = float(ms)

    def set_directory_import(self, mode: str) -> None:
        """How directory imports behave: ``accept``, ``refuse`` (400) or ``drop-one``."""
        from dbx_promote.emulator.directory import DIRECTORY_IMPORT_MODES

        if mode not in DIRECTORY_IMPORT_MODES:
            raise ValueError(f"directory_import must be one of {', '.join(DIRECTORY_IMPORT_MODES)}")
        self.directory_import = mode

    @property
    def import_rate_limit(self) -> float | None:
        """Imports allowed per second, or None for no limit."""
        with self._lock:
            return self._bucket.rate if self._bucket else None

    def set_import_rate_limit(self, per_second: float | None) -> None:
        """Limit imports to ``per_second`` (None: unlimited); excess requests get 429."""
        if per_second is not None and per_second <= 0:
            raise ValueError("import_rate_limit must be > 0 or None")
        with self._lock:
            self._bucket = TokenBucket(float(per_second)) if per_second is not None else None

    def reset(self, settings: bool = False) -> None:
        """Clear faults, counters and the log; with ``settings`` also latency and rate limit."""
        with self._lock:
            self._faults.clear()
            self._reset_stats()
        if settings:
            self.latency_ms = 0.0
            self.directory_import = "accept"
            self.set_import_rate_limit(None)

    # --- faults ------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Arm ``fault``; its count of matching requests starts now."""
        with self._lock:
            self._faults.append(_ArmedFault(fault))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def fault_for(self, endpoint: str, path: str | None, method: str | None = None) -> Fault | None:
        """Count this request against every matching fault; return the first that fires."""
        fired: Fault | None = None
        with self._lock:
            for armed in self._faults:
                if armed.fault.matches(endpoint, path, method) and armed.hit() and fired is None:
                    fired = armed.fault
        return fired

    def allow_import(self) -> bool:
        """Take a token for an import; False when over the rate limit."""
        with self._lock:
            return self._bucket is None or self._bucket.take()

    # --- statistics --------------------------------------------------------------------

    def record(
        self,
        method: str,
        endpoint: str,
        path: str | None,
        status: int,
        fault: bool,
        started: float | None = None,
    ) -> None:
        """Count a finished request (status 0: the connection was dropped)."""
        now = time.time()
        with self._lock:
            self._seq += 1
            self._total += 1
            if is_write(endpoint, method):
                self._writes += 1
            elif method in ("GET", "HEAD"):
                self._reads += 1
            self._by_endpoint[endpoint] += 1
            self._by_status[str(status)] += 1
            self._log.append(
                {
                    "seq": self._seq,
                    "method": method,
                    "endpoint": endpoint,
                    "path": path,
                    "status": status,
                    "start": now if started is None else started,
                    "ts": now,
                    "fault": fault,
                }
            )

    def counters(self) -> dict[str, Any]:
        """Totals since the last reset: total, reads, writes, by_endpoint, by_status."""
        with self._lock:
            return {
                "total": self._total,
                "reads": self._reads,
                "writes": self._writes,
                "by_endpoint": dict(self._by_endpoint),
                "by_status": dict(self._by_status),
            }

    def request_log(self) -> list[dict[str, Any]]:
        """Every counted request since the last reset, oldest first."""
        with self._lock:
            return [dict(e) for e in self._log]


def sequential_round_trips(log: list[dict[str, Any]]) -> int:
    """The longest chain of logged requests each sent after the previous one was answered.

    Requests that overlap in time count once, so this is the number of round trips a
    client waited for one after another (pacing that spaces a batch out counts too).
    """
    spans = sorted((e["start"], e["ts"]) for e in log)
    answered = sorted(end for _, end in spans)
    # A Fenwick tree of prefix maxima over the answer times: the longest chain that ended
    # by a given time, in O(log n) per request.
    tree = [0] * (len(answered) + 1)
    best = 0
    for start, end in spans:
        i, chain = bisect.bisect_right(answered, start), 0
        while i > 0:
            chain = max(chain, tree[i])
            i -= i & -i
        chain += 1
        best = max(best, chain)
        j = bisect.bisect_left(answered, end) + 1
        while j <= len(answered):
            tree[j] = max(tree[j], chain)
            j += j & -j
    return best


def jobs_control(jobs: Jobs, method: str, name: str, data: dict[str, Any]) -> Any:
    """The jobs part of the control API (``/_emulator/jobs/<name>``); raise `ApiError`."""
    try:
        if (method, name) == ("POST", "rules"):
            jobs.add_rule(JobRule.from_dict(data))
            return {}
        if (method, name) == ("DELETE", "rules"):
            jobs.clear_rules()
            return {}
        if (method, name) == ("POST", "settings"):
            clusters = data.get("clusters")
            if clusters is not None and not (
                isinstance(clusters, list) and all(isinstance(c, str) for c in clusters)
            ):
                raise ValueError("clusters must be a list of strings")
            jobs.configure(data.get("start_delay_s"), clusters, data.get("execute"))
            return {}
        if (method, name) == ("GET", "settings"):
            return jobs.settings()
        if (method, name) == ("GET", "runs"):
            return jobs.runs()
    except (TypeError, ValueError) as exc:
        raise invalid(f"Bad jobs control request: {exc}") from None
    raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No control API found for '{method} /jobs/{name}'")
