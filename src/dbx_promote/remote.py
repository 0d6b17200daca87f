"""What the workspace reports about objects and job runs (no SDK types, so planning and
result logic stay pure and import fast)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbx_promote import permissions


@dataclass(frozen=True)
class RemoteObject:
    """One object as the workspace reports it."""

    path: str
    object_type: str
    language: str | None = None
    object_id: int | None = None
    modified_at: int | None = None
    size: int | None = None

    @property
    def is_dir(self) -> bool:
        return self.object_type == "DIRECTORY"


# --- one-time job runs (Jobs API runs/submit), for an environment's tests -------------

# A run is over when its life cycle reaches one of these; INTERNAL_ERROR is how the
# service ends a run whose task failed, even though the task itself is TERMINATED.
TERMINAL_LIFE_CYCLES = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})


@dataclass(frozen=True)
class RunSpec:
    """One notebook run to submit: the task, its widgets, its compute and its limits.

    ``compute`` is the environment's `tests.compute` setting: ``existing_cluster_id``,
    ``new_cluster`` (a cluster spec) or ``serverless`` (no cluster at all).
    """

    run_name: str
    task_key: str
    notebook_path: str
    base_parameters: Mapping[str, str]
    compute: Mapping[str, Any]
    timeout_seconds: int
    idempotency_token: str


@dataclass(frozen=True)
class JobRun:
    """What `runs/get` says about a run (times in ms since the epoch; 0 or None: not yet)."""

    run_id: int
    run_page_url: str | None = None
    life_cycle_state: str | None = None
    result_state: str | None = None
    state_message: str | None = None
    status_state: str | None = None
    termination_code: str | None = None
    termination_type: str | None = None
    termination_message: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    task_run_ids: tuple[int, ...] = ()

    @property
    def is_over(self) -> bool:
        return self.life_cycle_state in TERMINAL_LIFE_CYCLES or self.status_state == "TERMINATED"

    @property
    def state(self) -> str:
        """One word for a table: the result once over, else the life cycle."""
        if self.is_over:
            return self.result_state or self.life_cycle_state or "TERMINATED"
        return self.status_state or self.life_cycle_state or "PENDING"


@dataclass(frozen=True)
class JobRunOutput:
    """What `runs/get-output` says about one task run."""

    result: str | None = None
    truncated: bool = False
    error: str | None = None
    error_trace: str | None = None


@dataclass(frozen=True)
class Identity:
    """The signed-in principal, as SCIM `Me` and the SDK's auth describe it."""

    user_name: str
    display_name: str | None = None
    groups: tuple[str, ...] = ()
    auth_type: str | None = None

    @property
    def principal(self) -> permissions.Identity:
        """Who it is for permissions: a user or a service principal, with its groups."""
        return permissions.Identity.named(self.user_name, self.groups)

    @property
    def is_service_principal(self) -> bool:
        return self.principal.kind == "service_principal"
