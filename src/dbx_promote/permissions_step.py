"""Permissions as code in the deploy engine: the `DeployStep` that plans, applies and undoes
root's ACL, and the same look for `status`.

The pure decisions live in `permissions.py`, the reads and writes in `access.py`; this
module only says when they happen in a deploy (see the steps in `deploy.py`):

- preflight: the lockout guard (exit 2) and an unreadable ACL refuse before any write;
- plan: permission rows (grant, revoke, change, drift), also in dry runs and reviewed plans;
- before commit: root's one PUT and the drift cleanups, under the lock after verify;
- on failure: every ACL written goes back to what it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from dbx_promote.access import (
    AclWriter,
    RootRead,
    check_root,
    managed_objects,
    plan_permissions,
    refuse_lockout,
    with_lockout_checked,
)
from dbx_promote.deploy import DeployStep, Run
from dbx_promote.permissions import Grant, Identity, PermissionsPlan
from dbx_promote.plan import UNCHANGED, UPDATE, Plan, PlanRow
from dbx_promote.record import Record
from dbx_promote.remote import RemoteObject
from dbx_promote.workspace import Workspace

ROW_KIND = "permission"
_WHY = {"drift": "a direct grant on a managed object (permission drift)"}


@dataclass
class _RunState:
    """What one deploy (one `Run`) learned and wrote; never carried into the next run on
    the same `Deployer` (testgate's rollback deploys again on it)."""

    deploy_id: str
    root: RootRead | None = None  # the preflight's read of root, for the first plan only
    writer: AclWriter | None = None
    warned: set[str] = field(default_factory=set)


class PermissionsStep(DeployStep):
    """Gives root exactly ``desired`` and the managed objects under it no direct grants."""

    def __init__(self, ws: Workspace, root: str, desired: tuple[Grant, ...]) -> None:
        self.ws = ws
        self.root = root
        self.desired = desired
        self._run = _RunState("")

    def me(self) -> Identity:
        """The signed-in principal with its groups (the adapter asks SCIM Me once)."""
        return self.ws.identity()

    def _state(self, run: Run) -> _RunState:
        if self._run.deploy_id != run.deploy_id:
            self._run = _RunState(run.deploy_id)
        return self._run

    def preflight(self, run: Run) -> None:
        state = self._state(run)  # a new run starts with nothing read or written
        if not run.options.dry_run:
            env = run.deployer.env.name
            state.root = check_root(self.ws, self.root, self.desired, self.me(), env)

    def extend_plan(self, run: Run, plan: Plan) -> Plan:
        state = self._state(run)
        # The first plan, moments after the preflight and before the lock, reuses its read
        # of root; the plan under the lock (what is applied) reads root again.
        first, state.root = state.root, None
        managed = managed_objects(self.root, run.listing, kept_paths(plan))
        record = run.planned_record
        found = plan_permissions(
            self.ws,
            self.root,
            self.desired,
            managed,
            self.me(),
            deployed_by=record.deployed_by if record else None,
            root_read=first,
        )
        if not run.options.dry_run:
            refuse_lockout(found, run.deployer.env.name)
        found = with_lockout_checked(found, run.options.dry_run)
        for warning in found.warnings:
            if warning not in state.warned:  # planned twice (again under the lock): once
                state.warned.add(warning)
                run.deployer.events.warning(warning)
        rows = [
            PlanRow(ROW_KIND, action, what, _WHY.get(action, "root's permissions"))
            for action, what in found.rows(self.root)
        ]
        return replace(plan, permissions=found).with_rows(*rows)

    def before_commit(self, run: Run, plan: Plan) -> None:
        if plan.permissions is None:
            return
        state = self._state(run)
        state.writer = AclWriter(self.ws, self.root)
        state.writer.apply(plan.permissions)

    def on_failure(self, run: Run, error: BaseException) -> str | None:
        state = self._state(run)
        writer, state.writer = state.writer, None
        if writer is None or not writer.changed:
            return None
        failed = writer.restore()
        if failed:
            return f"the permissions of {', '.join(failed)} could NOT be put back"
        return "the permissions were put back"


def kept_paths(plan: Plan) -> list[str]:
    """Objects that are there now and stay after the deploy, each the same object (so the
    same ACL): a replaced or new object starts with only its creator's grant."""
    return [c.path for c in plan.changes if c.action in (UPDATE, UNCHANGED) and not c.replace]


def steps_for(ws: Workspace, root: str, desired: tuple[Grant, ...] | None) -> list[DeployStep]:
    """The permissions step when the environment manages permissions, else none."""
    return [] if desired is None else [PermissionsStep(ws, root, desired)]


def permissions_status(
    ws: Workspace,
    root: str,
    desired: tuple[Grant, ...],
    record: Record,
    listing: Iterable[RemoteObject],
) -> PermissionsPlan:
    """What `status` says about root's ACL and the managed objects' direct grants.

    As a deploy plans it: the CAN_MANAGE of the principal the record names and of the one
    asking, each on what it created, is not drift.
    """
    managed = managed_objects(root, listing, record.objects)
    return plan_permissions(ws, root, desired, managed, deployed_by=record.deployed_by)
