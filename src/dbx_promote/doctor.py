"""`dbx-promote doctor`: what is missing in a setup, found before the first pipeline run.

Every check returns a `Check` (✔ ok, ✘ fail with the fix, ? unknown) instead of raising, so
one run reports everything at once. Doctor only reads: it never sends a write request,
takes no lock and changes no state (the tests assert this with the emulator's counters).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbx_promote.access import plan_permissions
from dbx_promote.config import Config, Environment, env_var_name, join_workspace
from dbx_promote.connection import AUTH_ENV_VAR, connect
from dbx_promote.errors import (
    ConnectionFailed,
    CredentialsError,
    DbxPromoteError,
    ObjectNotFound,
    PermissionDenied,
    RecordCorrupt,
)
from dbx_promote.lock import LockRules, judge
from dbx_promote.permissions import RANK, Identity, ObjectAcl
from dbx_promote.record import (
    HISTORY_FILE,
    LOCK_FILE,
    RECORD_FILE,
    RELEASES_DIR,
    STATE_DIR,
    Lock,
    Record,
    history_from_json,
)
from dbx_promote.remote import RemoteObject
from dbx_promote.workspace import Workspace

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
SYMBOLS = {OK: "✔", FAIL: "✘", UNKNOWN: "?"}

Connect = Callable[[Environment], Workspace]


@dataclass(frozen=True)
class Check:
    """One finding. ``env`` is empty for checks of the machine itself (CI identity)."""

    env: str
    name: str
    status: str  # ok | fail | unknown
    detail: str
    fix: str = ""

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.status]

    def to_dict(self) -> dict[str, str]:
        return {
            "env": self.env,
            "check": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass
class Diagnosis:
    """Every check of one `doctor` run, in the order they ran."""

    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed": len(self.failed),
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass
class _Session:
    """A connection to one environment's workspace, or why there is none."""

    ws: Workspace | None
    who: Identity | None
    auth_type: str | None
    error: DbxPromoteError | None


class _Doctor:
    def __init__(
        self,
        config: Config,
        connect: Connect,
        environ: Mapping[str, str],
        azure_token_source: Callable[[], Any] | None,
    ) -> None:
        self.config = config
        self.connect = connect
        self.environ = environ
        self.azure_token_source = azure_token_source
        self.sessions: dict[str, _Session] = {}
        self.diagnosis = Diagnosis()

    def add(self, env: str, name: str, status: str, detail: str, fix: str = "") -> None:
        self.diagnosis.checks.append(Check(env, name, status, detail, fix))

    def session(self, env: Environment) -> _Session:
        """Connect once per environment and ask who we are (cached for `requires`)."""
        if env.name not in self.sessions:
            try:
                ws = self.connect(env)
                me = ws.whoami()
                self.sessions[env.name] = _Session(ws, me.principal, me.auth_type, None)
            except DbxPromoteError as exc:
                self.sessions[env.name] = _Session(None, None, None, exc)
        return self.sessions[env.name]

    # --- one environment ---------------------------------------------------------------

    def environment(self, env: Environment) -> None:
        s = self.session(env)
        if s.ws is None or s.who is None:
            assert s.error is not None
            self.add(env.name, "sign-in", FAIL, str(s.error), _sign_in_fix(env, s.error))
            for name in ("root", "access", "state", "lock"):
                self.add(env.name, name, UNKNOWN, "not checked: no connection to the workspace")
        else:
            kind = s.who.kind.replace("_", " ")
            self.add(
                env.name,
                "sign-in",
                OK,
                f"{s.who.name} ({kind}) via {s.auth_type or 'unknown auth'} on {s.ws.host}",
            )
            try:
                self.folder(env, s.ws, s.who)
            except DbxPromoteError as exc:
                # A read the checks did not expect to fail (a 403 on a listing, say): report
                # it and go on with the other environments.
                self.add(env.name, "read", FAIL, str(exc), "see the message; doctor only reads")
            if env.tests is not None:
                self.tests(env, s.ws)
        if env.requires:
            self.requires(env)

    def folder(self, env: Environment, ws: Workspace, who: Identity) -> None:
        try:
            root = env.resolved_root(who.name)
        except DbxPromoteError as exc:
            self.add(env.name, "root", FAIL, str(exc), "fix `root` in the config")
            return
        try:
            target = self.root(env, ws, root)
        except PermissionDenied as exc:
            self.add(env.name, "root", FAIL, str(exc), _grant_fix(who, root, "CAN_MANAGE"))
            for name in ("access", "state", "lock"):
                self.add(env.name, name, UNKNOWN, "not checked: root is not readable")
            return
        if target is None:
            self.add(env.name, "access", UNKNOWN, "not checked: the root cannot be created")
        elif self.access(env, ws, who, root, target) and env.permissions is not None:
            self.permissions(env, ws, who, root)
        record = self.state(env, ws, root)
        self.lock(env, ws, root, record)

    def root(self, env: Environment, ws: Workspace, root: str) -> RemoteObject | None:
        """Check that root exists or can be created; returns the folder whose access counts
        (root, or the parent it will be created in)."""
        info = ws.get_status(root)
        if info is not None:
            if not info.is_dir:
                self.add(
                    env.name,
                    "root",
                    FAIL,
                    f"{root} is a {info.object_type}, not a folder",
                    "choose another `root`, or remove that object",
                )
                return None
            self.add(env.name, "root", OK, f"{root} exists")
            return info
        parent = posixpath.dirname(root)
        pinfo = ws.get_status(parent)
        if pinfo is None or not pinfo.is_dir:
            what = "does not exist" if pinfo is None else f"is a {pinfo.object_type}"
            self.add(
                env.name,
                "root",
                FAIL,
                f"{root} does not exist and its parent folder {parent} {what}",
                f"check `root` for a typo, or create {parent} "
                f"(`databricks workspace mkdirs {parent}`) before the first deploy",
            )
            return None
        self.add(env.name, "root", OK, f"{root} does not exist yet; the first deploy creates it")
        return pinfo

    def access(
        self, env: Environment, ws: Workspace, who: Identity, root: str, target: RemoteObject
    ) -> bool:
        """Can the caller write in root (or create it) and manage it? True when it can."""
        folder = target.path
        creating = folder != root
        needed = "CAN_EDIT" if creating else "CAN_MANAGE"
        try:
            level = effective_level(ws.get_acl(target), who)
        except PermissionDenied:
            # The workspace shows an ACL only to those who manage the object: a refusal
            # proves the caller lacks CAN_MANAGE, but not that it lacks CAN_EDIT.
            self.add(
                env.name,
                "access",
                UNKNOWN if creating else FAIL,
                f"{who.name} may not read the permissions of {folder}, so it does not "
                f"hold CAN_MANAGE there{'; creating root needs CAN_EDIT' if creating else ''}",
                _grant_fix(who, folder, needed),
            )
            return False
        except ObjectNotFound as exc:
            self.add(
                env.name,
                "access",
                UNKNOWN,
                f"the workspace did not answer the Permissions API ({exc.error_code or exc})",
            )
            return False
        if RANK.get(level or "", 0) >= RANK[needed]:
            why = "; the creator gets CAN_MANAGE on root" if creating else ""
            self.add(env.name, "access", OK, f"{who.name} holds {level} on {folder}{why}")
            return True
        self.add(
            env.name,
            "access",
            FAIL,
            f"{who.name} holds {level or 'no permission'} on {folder}; "
            f"{'creating root' if creating else 'deploying'} needs {needed}",
            _grant_fix(who, folder, needed),
        )
        return False

    def permissions(self, env: Environment, ws: Workspace, who: Identity, root: str) -> None:
        """Would the configured `permissions:` leave the caller CAN_MANAGE on root? The
        deploy's own plan answers (read-only); it refuses a lockout, so doctor names it."""
        assert env.permissions is not None
        plan = plan_permissions(ws, root, env.permissions, (), who)
        if not plan.known:
            self.add(env.name, "permissions", UNKNOWN, "; ".join(plan.warnings))
        elif plan.lockout:
            self.add(
                env.name,
                "permissions",
                FAIL,
                plan.lockout,
                f"add `{{{who.kind}: {who.name}, level: CAN_MANAGE}}` (or a group of it) to "
                f"`permissions` of '{env.name}'",
            )
        else:
            changes = "; ".join(f"{action} {what}" for action, what in plan.rows())
            self.add(
                env.name,
                "permissions",
                OK,
                f"the configured permissions keep {who.name} CAN_MANAGE on root; "
                f"the next deploy: {changes or 'no change'}",
            )

    def state(self, env: Environment, ws: Workspace, root: str) -> Record | None:
        """The state folder is readable and its documents parse; returns the record."""
        state_dir = join_workspace(root, STATE_DIR)
        listing = ws.list_dir(state_dir)
        if listing is None:
            self.add(env.name, "state", OK, "nothing deployed yet (no state folder)")
            return None
        present = {posixpath.basename(o.path) for o in listing}
        record: Record | None = None
        history = 0
        try:
            if "deployment.json" in present:
                raw = ws.download(join_workspace(root, RECORD_FILE))
                record = Record.from_json(raw, where=join_workspace(root, RECORD_FILE))
            if "history.json" in present:
                raw = ws.download(join_workspace(root, HISTORY_FILE))
                history = len(history_from_json(raw, where=join_workspace(root, HISTORY_FILE)))
        except RecordCorrupt as exc:
            self.add(env.name, "state", FAIL, str(exc).split(";")[0], _corrupt_fix(exc))
            return None
        if record is None:
            self.add(env.name, "state", OK, f"no record yet; {history} history entries")
            return None
        self.releases(env, ws, root, record, history)
        return record

    def releases(
        self, env: Environment, ws: Workspace, root: str, record: Record, history: int
    ) -> None:
        stored = {o.path for o in ws.list_dir(join_workspace(root, RELEASES_DIR)) or []}
        ref = record.release
        missing = [f for f in ref.files if join_workspace(root, f) not in stored] if ref else ["?"]
        runs = f"{record.version} ({record.digest[:19]}…)"
        if missing:
            self.add(
                env.name,
                "state",
                FAIL,
                f"the record names {runs} but its stored release is missing, so it cannot be "
                "promoted or rolled back to",
                f"deploy that version's build artifact to '{env.name}' again",
            )
            return
        verified = "verified" if record.verified else "NOT verified"
        self.add(
            env.name,
            "state",
            OK,
            f"record: {runs}, {verified}; {history} history entries; "
            f"{len(record.releases)} stored release(s)",
        )

    def lock(self, env: Environment, ws: Workspace, root: str, record: Record | None) -> None:
        raw = ws.read_optional(join_workspace(root, LOCK_FILE))
        if raw is None:
            self.add(env.name, "lock", OK, "free: no deploy in progress")
            return
        deploy_hint = (
            f"if no deploy is running, the next `dbx-promote deploy --env {env.name} "
            f"--break-lock` (or `rollback --env {env.name} --break-lock`) converges the folder"
        )
        try:
            lock = Lock.from_json(raw, where=join_workspace(root, LOCK_FILE))
        except RecordCorrupt:
            self.add(env.name, "lock", FAIL, f"{LOCK_FILE} is unreadable", deploy_hint)
            return
        # The same stale rules the deploy applies (lock.py): heartbeat on the workspace's
        # clock, pid, committed.
        age = ws.age_of(join_workspace(root, LOCK_FILE))
        state = judge(lock, record, LockRules(stale_minutes=env.lock_stale_minutes), age=age)
        if state.committed:
            self.add(
                env.name,
                "lock",
                OK,
                f"left by a deploy that committed ({lock.describe()}); the next deploy removes it",
            )
            return
        if state.stale is not None:
            self.add(
                env.name,
                "lock",
                FAIL,
                f"stale lock, an interrupted deploy: held by {lock.describe()}; {state.stale}; "
                "the folder may hold parts of two releases",
                deploy_hint,
            )
            return
        self.add(env.name, "lock", OK, f"a deploy is running: {lock.describe()}")

    def tests(self, env: Environment, ws: Workspace) -> None:
        """The compute the tests run on exists, and the caller may use the Jobs API."""
        assert env.tests is not None
        compute = env.tests.compute
        try:
            ws.can_list_runs()
        except DbxPromoteError as exc:
            self.add(
                env.name,
                "tests",
                FAIL,
                f"the caller may not use the Jobs API: {exc}",
                "give the principal workspace access with job runs allowed (the "
                "'Allow unrestricted cluster creation' entitlement is not needed for "
                "an existing cluster or serverless)",
            )
            return
        if env.tests.compute_kind != "existing_cluster_id":
            what = "serverless" if compute.get("serverless") else "a new cluster per run"
            self.add(env.name, "tests", OK, f"test runs on {what}; the Jobs API answers")
            return
        cluster = str(compute["existing_cluster_id"])
        state = ws.cluster_state(cluster)
        if state is None:
            self.add(
                env.name,
                "tests",
                FAIL,
                f"the test cluster {cluster} does not exist in this workspace",
                f"fix `tests.compute.existing_cluster_id` of '{env.name}' (the cluster's id "
                "from its page or `databricks clusters list`), or use {serverless: true}",
            )
            return
        self.add(env.name, "tests", OK, f"test cluster {cluster} exists ({state})")

    def requires(self, env: Environment) -> None:
        assert env.requires
        source = self.config.environment(env.requires)
        s = self.session(source)
        if s.ws is None or s.who is None:
            assert s.error is not None
            self.add(
                env.name,
                "requires",
                FAIL,
                f"required environment '{source.name}' is unreachable: {s.error}",
                _sign_in_fix(source, s.error),
            )
            return
        try:
            root = source.resolved_root(s.who.name)
            raw = s.ws.read_optional(join_workspace(root, RECORD_FILE))
            record = (
                None
                if raw is None
                else Record.from_json(raw, where=join_workspace(root, RECORD_FILE))
            )
        except DbxPromoteError as exc:
            self.add(env.name, "requires", FAIL, f"'{source.name}': {exc}", _corrupt_fix(exc))
            return
        if record is None:
            self.add(
                env.name,
                "requires",
                FAIL,
                f"required environment '{source.name}' has nothing deployed yet",
                f"deploy to '{source.name}' first; '{env.name}' only takes what it verified",
            )
            return
        verified = "verified" if record.verified else "NOT verified"
        self.add(
            env.name,
            "requires",
            OK,
            f"'{source.name}' is reachable and runs {record.version} ({verified})",
        )

    # --- the machine --------------------------------------------------------------------

    def pipeline(self) -> None:
        """In CI: which pipeline identity runs us, and whether its federation works."""
        from dbx_promote.ci import detect

        ci = detect(self.environ)
        ctx = ci.run_context() or {}
        if ci.name == "azure-pipelines":
            run = ctx.get("build_number") or ctx.get("build_id") or "?"
            where = ctx.get("run_url") or f"{ctx.get('pipeline', '')} run {run}".strip()
            self.add("", "pipeline", OK, f"Azure DevOps pipeline {where}")
            self.azure_federation()
        elif ci.name == "github-actions":
            self.add(
                "",
                "pipeline",
                OK,
                f"GitHub Actions workflow {ctx.get('workflow', '?')} in "
                f"{ctx.get('repository', '?')} (run {ctx.get('run_id', '?')}, "
                f"{ctx.get('ref', '?')})",
            )
            self.github_federation()

    def _uses(self, auth: str) -> list[str]:
        default = self.environ.get(AUTH_ENV_VAR)
        return [n for n, e in self.config.environments.items() if (e.auth or default) == auth]

    def azure_federation(self) -> None:
        from dbx_promote.azure.auth import REQUIRED_VARS, AzurePipelinesTokenSource

        users = self._uses("azure-pipelines")
        if not users and not any(self.environ.get(v) for v in REQUIRED_VARS[:3]):
            self.add(
                "",
                "federation",
                UNKNOWN,
                "no workload identity service connection in this step and no environment "
                "uses `auth: azure-pipelines`; the SDK's own auth is used",
            )
            return
        factory = self.azure_token_source or (
            lambda: AzurePipelinesTokenSource.from_env(self.environ)
        )
        try:
            factory().token()
        except CredentialsError as exc:
            self.add(
                "",
                "federation",
                FAIL,
                str(exc),
                "run dbx-promote inside AzureCLI@2 with a workload identity federation service "
                "connection and map env: {SYSTEM_ACCESSTOKEN: $(System.AccessToken)}; check the "
                "federated credential's issuer and subject on the app registration",
            )
            return
        self.add(
            "",
            "federation",
            OK,
            "the service connection's federated credential was exchanged for an Entra ID token",
        )

    def github_federation(self) -> None:
        users = self._uses("github-oidc")
        has_token = self.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") and self.environ.get(
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
        )
        if not has_token:
            status = FAIL if users else UNKNOWN
            self.add(
                "",
                "federation",
                status,
                "the job cannot request a GitHub OIDC token (ACTIONS_ID_TOKEN_REQUEST_* unset)",
                "add `permissions: {id-token: write}` to the job" if users else "",
            )
            return
        signed_in = [n for n in users if self.sessions.get(n) and self.sessions[n].ws]
        if not users:
            self.add(
                "",
                "federation",
                UNKNOWN,
                "a GitHub OIDC token is available but no environment uses `auth: github-oidc`",
            )
        elif signed_in:
            self.add(
                "",
                "federation",
                OK,
                f"the workflow's OIDC token was exchanged (signed in to {', '.join(signed_in)})",
            )
        else:
            self.add(
                "",
                "federation",
                FAIL,
                "the workflow's OIDC token was not accepted by the workspace",
                "add a federation policy for this repository and environment to the "
                "Databricks service principal (DATABRICKS_CLIENT_ID)",
            )


def diagnose(
    config: Config,
    env_name: str | None = None,
    *,
    connect: Connect = connect,
    environ: Mapping[str, str] | None = None,
    azure_token_source: Callable[[], Any] | None = None,
) -> Diagnosis:
    """Check every environment (or ``env_name``) and, in CI, the pipeline identity.

    Args:
        config: the validated config.
        env_name: one environment; `UnknownEnvironment` (exit 2) if the config lacks it.
        connect: the workspace seam.
        environ: the process environment to read CI variables from (default os.environ).
        azure_token_source: builds the `AzurePipelinesTokenSource` to test (a seam for tests).

    Never raises for what it finds: every problem is a failed `Check`.
    """
    names = [config.environment(env_name).name] if env_name else list(config.environments)
    doctor = _Doctor(
        config, connect, os.environ if environ is None else environ, azure_token_source
    )
    for name in names:
        doctor.environment(config.environments[name])
    doctor.pipeline()
    return doctor.diagnosis


def effective_level(acl: ObjectAcl, who: Identity) -> str | None:
    """The strongest level ``who`` holds on an object, directly, inherited, through its
    groups or `users`; workspace admins always manage."""
    if who.is_admin:
        return "CAN_MANAGE"
    grants = [*acl.direct, *(i.grant for i in acl.inherited)]
    return max((g.level for g in grants if who.holds(g)), key=RANK.__getitem__, default=None)


def _sign_in_fix(env: Environment, exc: DbxPromoteError) -> str:
    if isinstance(exc, ConnectionFailed):
        return (
            f"check the host: `host` of '{env.name}' in the config, "
            f"{env_var_name(env.name, 'HOST')} or DATABRICKS_HOST, and the network or proxy"
        )
    return (
        f"give '{env.name}' credentials of a principal of this workspace: DATABRICKS_TOKEN "
        f"(or {env_var_name(env.name, 'TOKEN')}), a `profile`, or `auth:`; a refused token is "
        "expired, revoked or for another workspace"
    )


def _grant_fix(who: Identity, folder: str, level: str) -> str:
    kind = who.kind.replace("_", " ")
    return (
        f"have a workspace admin or an owner of {folder} grant {kind} {who.name} "
        f"{level} on it (Share in the workspace UI)"
    )


def _corrupt_fix(exc: DbxPromoteError) -> str:
    text = str(exc)
    if ";" in text:
        return text.split(";", 1)[1].strip()
    return "fix or delete the file in the workspace"


__all__ = ["FAIL", "OK", "UNKNOWN", "Check", "Diagnosis", "diagnose", "effective_level"]
