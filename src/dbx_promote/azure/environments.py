"""``ado ensure-environments``: the Azure DevOps environments and their checks, from config.

For every environment in ``dbx-promote.yml`` this makes sure an Azure DevOps environment
(``ado_environment``, default ``dbx-<name>``) exists, and for environments with an
``approval:`` block, that it carries

* an **Approval** check whose approvers, minimum count, instructions, "requester cannot
  approve" and timeout match the config, and
* when ``approval.branch_control`` lists refs, a **Branch control** check allowing only
  those refs.

It is idempotent: a second run reads and changes nothing. Checks it does not manage (an
exclusive lock, business hours...) are left alone, and so are environments' other checks.

Approvers are written in config as e-mail addresses or group names
(``[Project]\\Group``) and resolved with the Identities API
(``IdentityClient.read_identities(search_filter="General", filter_value=...)``), which
answers for both users and groups in one call.

Uses the ``azure-devops`` package (7.1.0b4) through ``Connection``, which first discovers
where each API area lives (``_apis/ResourceAreas``, then ``OPTIONS <area>/_apis``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from dbx_promote.config import Approval, Config, Environment
from dbx_promote.errors import AzureDevOpsError, ConfigError, CredentialsError

if TYPE_CHECKING:
    from azure.devops.connection import Connection

APPROVAL_TYPE_ID = "8C6F20A7-A545-4486-9777-F762FAFE0D4D"
TASK_CHECK_TYPE_ID = "fe1de3ee-a436-41b4-bb20-f6eb4cb879a7"
BRANCH_CONTROL_TASK = {
    "id": "86b05a0c-73e6-4f7d-b3cf-e38f3b39a75b",
    "name": "evaluatebranchProtection",
    "version": "0.0.1",
}
BRANCH_CONTROL_NAME = "Branch control"
BRANCH_CONTROL_TIMEOUT_MINUTES = 1440

ChangeKind = Literal["create-environment", "create-check", "update-check", "unchanged"]
TokenKind = Literal["pat", "bearer"]


@dataclass(frozen=True)
class Change:
    """One thing ``ensure_environments`` did (or, in a dry run, would do).

    :ivar kind: ``create-environment``, ``create-check``, ``update-check`` or ``unchanged``.
    :ivar target: what it is about, e.g. ``dbx-prod`` or ``dbx-prod/Approval``.
    :ivar detail: a short human-readable explanation (what differs, approvers...).
    """

    kind: ChangeKind
    target: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "detail": self.detail}


def _check_configuration_class() -> type[Any]:
    """``CheckConfiguration`` that serializes ``settings``.

    azure-devops 7.1.0b4 lacks ``settings`` in ``CheckConfiguration._attribute_map``, so msrest
    silently drops it and the approvers never reach the service (fixed upstream in
    microsoft/azure-devops-python-api PR #522, unreleased).
    """
    from azure.devops.v7_1.pipelines_checks.models import CheckConfiguration

    class CheckConfigurationWithSettings(CheckConfiguration):
        _attribute_map = dict(
            CheckConfiguration._attribute_map, settings={"key": "settings", "type": "object"}
        )

        def __init__(self, settings: Any = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.settings = settings

    return CheckConfigurationWithSettings


def devops_token(environ: Mapping[str, str] | None = None) -> tuple[str, TokenKind]:
    """The Azure DevOps token from the environment and its kind (``pat`` or ``bearer``).

    Raises `CredentialsError` (exit 2) naming the variables to set.
    """
    source = os.environ if environ is None else environ
    for name in ("AZURE_DEVOPS_PAT", "AZURE_DEVOPS_EXT_PAT"):
        if source.get(name):
            return source[name], "pat"
    if source.get("SYSTEM_ACCESSTOKEN"):
        return source["SYSTEM_ACCESSTOKEN"], "bearer"
    raise CredentialsError(
        "no Azure DevOps token: set AZURE_DEVOPS_PAT (a PAT with Environment read & manage "
        "and Identity read scopes) or, in a pipeline, map "
        "env: {SYSTEM_ACCESSTOKEN: $(System.AccessToken)}"
    )


def connect(organization_url: str, token: str, token_kind: TokenKind = "pat") -> Connection:
    """An ``azure.devops`` connection authenticated with a PAT or a bearer token.

    :param organization_url: e.g. ``https://dev.azure.com/contoso``.
    :param token: a personal access token, or ``System.AccessToken`` (``token_kind="bearer"``).
    """
    from azure.devops.connection import Connection
    from msrest.authentication import BasicAuthentication, BasicTokenAuthentication

    creds: Any
    if token_kind == "bearer":
        creds = BasicTokenAuthentication({"access_token": token})
    else:
        creds = BasicAuthentication("", token)
    return Connection(base_url=organization_url.rstrip("/"), creds=creds)


def ensure_environments(
    config: Config,
    *,
    organization_url: str,
    project: str,
    token: str,
    token_kind: TokenKind = "pat",
    dry_run: bool = False,
    connection: Connection | None = None,
    only: Iterable[str] | None = None,
) -> list[Change]:
    """Create or update the Azure DevOps environments and checks that ``config`` describes.

    :param config: the loaded ``dbx-promote.yml``.
    :param organization_url: ``https://dev.azure.com/<org>`` (``System.CollectionUri``).
    :param project: the Azure DevOps project name (``System.TeamProject``).
    :param token: a PAT, or ``System.AccessToken`` with ``token_kind="bearer"``.
    :param token_kind: ``"pat"`` (basic auth) or ``"bearer"``.
    :param dry_run: only read (GET requests); report what would be created or updated.
    :param connection: an existing ``azure.devops.connection.Connection`` (a seam for tests
        and for callers with their own auth); ``organization_url``/``token`` are then unused.
    :param only: names of config environments to handle (default: every environment except
        personal sandboxes, i.e. those whose ``root`` contains ``{user}``).
    :return: one :class:`Change` per environment and per managed check.
    :raises ConfigError: an approver cannot be found in the organization.
    :raises CredentialsError: the token was refused (401/403).
    :raises AzureDevOpsError: any other failure of the service.
    """
    conn = connection or connect(organization_url, token, token_kind)
    wanted = set(only) if only is not None else None
    if wanted is None:
        # A root with {user} is each engineer's own sandbox: no pipeline deploys there.
        envs = [e for e in config.environments.values() if "{user}" not in e.root]
    else:
        envs = [e for e in config.environments.values() if e.name in wanted]
    if wanted is not None:
        unknown = sorted(wanted - {e.name for e in envs})
        if unknown:
            raise ConfigError(f"no environment named {', '.join(unknown)} in the config")
    try:
        return _Ensurer(conn, project, dry_run).run(envs)
    except (ConfigError, CredentialsError, AzureDevOpsError):
        raise
    except Exception as exc:
        ours = _translate(exc, organization_url or str(getattr(conn, "base_url", "")), token)
        if ours is None:
            raise
        raise ours from exc


class _Ensurer:
    def __init__(self, conn: Connection, project: str, dry_run: bool) -> None:
        self.conn = conn
        self.project = project
        self.dry_run = dry_run
        self._identities: dict[str, dict[str, str]] = {}

    # -- clients (created lazily: each one costs a discovery round trip) --

    @property
    def task_agent(self) -> Any:
        return self.conn.clients_v7_1.get_task_agent_client()

    @property
    def checks(self) -> Any:
        return self.conn.clients_v7_1.get_pipelines_checks_client()

    @property
    def identity(self) -> Any:
        return self.conn.clients_v7_1.get_identity_client()

    def run(self, envs: list[Environment]) -> list[Change]:
        changes: list[Change] = []
        for env in envs:
            changes += self._ensure(env)
        return changes

    def _ensure(self, env: Environment) -> list[Change]:
        from azure.devops.v7_1.task_agent.models import EnvironmentCreateParameter

        name = env.ado_environment or f"dbx-{env.name}"
        changes: list[Change] = []
        approvers = self._resolve_approvers(env.approval) if env.approval else []
        existing = self._find_environment(name)
        if existing is None:
            changes.append(
                Change("create-environment", name, f"for config environment '{env.name}'")
            )
            if self.dry_run:
                if env.approval:
                    changes += self._planned_checks(name, env.approval, approvers)
                return changes
            existing = self.task_agent.add_environment(
                EnvironmentCreateParameter(
                    name=name, description=f"Deployed by dbx-promote (environment '{env.name}')"
                ),
                self.project,
            )
        else:
            changes.append(Change("unchanged", name, "environment exists"))
        if env.approval:
            changes += self._ensure_checks(name, existing, env.approval, approvers)
        return changes

    def _find_environment(self, name: str) -> Any | None:
        for candidate in self.task_agent.get_environments(self.project, name=name) or []:
            # Environment names are case-insensitive in Azure DevOps.
            if (candidate.name or "").lower() == name.lower():
                return candidate
        return None

    # -- approvers --

    def _resolve_approvers(self, approval: Approval) -> list[dict[str, str]]:
        resolved = []
        for who in approval.approvers:
            if who not in self._identities:
                found = self.identity.read_identities(
                    search_filter="General", filter_value=who, query_membership="None"
                )
                active = [i for i in found or [] if getattr(i, "is_active", True) is not False]
                if not active:
                    raise ConfigError(
                        f"approver '{who}' was not found in the Azure DevOps organization; "
                        "use the e-mail address of a user or the name of a group "
                        "(e.g. [Project]\\Release Approvers)"
                    )
                ident = active[0]
                self._identities[who] = {
                    "id": str(ident.id),
                    "displayName": ident.provider_display_name or who,
                }
            resolved.append(self._identities[who])
        return resolved

    # -- checks --

    def _planned_checks(
        self, name: str, approval: Approval, approvers: list[dict[str, str]]
    ) -> list[Change]:
        planned = [
            Change("create-check", f"{name}/Approval", _approval_detail(approval, approvers))
        ]
        if approval.branch_control:
            planned.append(
                Change(
                    "create-check",
                    f"{name}/{BRANCH_CONTROL_NAME}",
                    "allowed: " + ", ".join(approval.branch_control),
                )
            )
        return planned

    def _ensure_checks(
        self, name: str, environment: Any, approval: Approval, approvers: list[dict[str, str]]
    ) -> list[Change]:
        resource = {"type": "environment", "id": str(environment.id), "name": name}
        existing = (
            self.checks.get_check_configurations_on_resource(
                self.project,
                resource_type="environment",
                resource_id=str(environment.id),
                expand="settings",
            )
            or []
        )
        changes = [self._ensure_approval(name, resource, existing, approval, approvers)]
        if approval.branch_control:
            changes.append(self._ensure_branch_control(name, resource, existing, approval))
        return changes

    def _ensure_approval(
        self,
        name: str,
        resource: dict[str, str],
        existing: list[Any],
        approval: Approval,
        approvers: list[dict[str, str]],
    ) -> Change:
        target = f"{name}/Approval"
        desired = {
            "approvers": approvers,
            "minRequiredApprovers": approval.min_approvers,
            "instructions": approval.instructions,
            "requesterCannotBeApprover": approval.requester_cannot_approve,
        }
        current = next(
            (c for c in existing if _type_id(c) == APPROVAL_TYPE_ID.lower()),
            None,
        )
        detail = _approval_detail(approval, approvers)
        if current is None:
            settings = {**desired, "executionOrder": "anyOrder", "blockedApprovers": []}
            self._write(
                "add",
                None,
                APPROVAL_TYPE_ID,
                "Approval",
                resource,
                settings,
                approval.timeout_minutes,
            )
            return Change("create-check", target, detail)
        have = _settings(current)
        differences = _approval_differences(
            have, desired, current.timeout, approval.timeout_minutes
        )
        if not differences:
            return Change("unchanged", target, detail)
        settings = {**have, **desired}
        self._write(
            "update",
            current.id,
            APPROVAL_TYPE_ID,
            "Approval",
            resource,
            settings,
            approval.timeout_minutes,
        )
        return Change("update-check", target, "changed: " + ", ".join(differences))

    def _ensure_branch_control(
        self, name: str, resource: dict[str, str], existing: list[Any], approval: Approval
    ) -> Change:
        target = f"{name}/{BRANCH_CONTROL_NAME}"
        allowed = ",".join(approval.branch_control)
        inputs = {
            "allowedBranches": allowed,
            "ensureProtectionOfBranch": "false",
            "allowUnknownStatusBranches": "false",
        }
        current = next(
            (
                c
                for c in existing
                if _type_id(c) == TASK_CHECK_TYPE_ID
                and str((_settings(c).get("definitionRef") or {}).get("id", "")).lower()
                == BRANCH_CONTROL_TASK["id"]
            ),
            None,
        )
        detail = f"allowed: {', '.join(approval.branch_control)}"
        settings: dict[str, Any] = {
            "displayName": BRANCH_CONTROL_NAME,
            "definitionRef": dict(BRANCH_CONTROL_TASK),
            "inputs": inputs,
            "retryInterval": 5,
        }
        if current is None:
            self._write(
                "add",
                None,
                TASK_CHECK_TYPE_ID,
                "Task Check",
                resource,
                settings,
                BRANCH_CONTROL_TIMEOUT_MINUTES,
            )
            return Change("create-check", target, detail)
        have_inputs = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (_settings(current).get("inputs") or {}).items()
        }
        if all(have_inputs.get(k) == v for k, v in inputs.items()):
            return Change("unchanged", target, detail)
        merged = {**_settings(current), **settings, "inputs": {**have_inputs, **inputs}}
        self._write(
            "update",
            current.id,
            TASK_CHECK_TYPE_ID,
            "Task Check",
            resource,
            merged,
            current.timeout or BRANCH_CONTROL_TIMEOUT_MINUTES,
        )
        return Change("update-check", target, detail)

    def _write(
        self,
        action: Literal["add", "update"],
        check_id: int | None,
        type_id: str,
        type_name: str,
        resource: dict[str, str],
        settings: dict[str, Any],
        timeout: int,
    ) -> None:
        if self.dry_run:
            return
        from azure.devops.v7_1.pipelines_checks.models import CheckType, Resource

        configuration = _check_configuration_class()(
            settings=settings,
            id=check_id,
            type=CheckType(id=type_id, name=type_name),
            resource=Resource(**resource),
            timeout=timeout,
        )
        if action == "add":
            self.checks.add_check_configuration(configuration, self.project)
        else:
            self.checks.update_check_configuration(configuration, self.project, check_id)


def _type_id(check: Any) -> str:
    return str(getattr(getattr(check, "type", None), "id", "") or "").lower()


def _settings(check: Any) -> dict[str, Any]:
    """A check's settings: an attribute on a fixed model, else where msrest parks unknowns."""
    settings = getattr(check, "settings", None)
    if settings is None:
        settings = (getattr(check, "additional_properties", None) or {}).get("settings")
    return dict(settings or {})


def _approval_detail(approval: Approval, approvers: list[dict[str, str]]) -> str:
    names = ", ".join(a.get("displayName") or a["id"] for a in approvers)
    return (
        f"approvers: {names}; min {approval.min_approvers}; timeout {approval.timeout_minutes} min"
    )


def _approval_differences(
    have: Mapping[str, Any], want: Mapping[str, Any], have_timeout: Any, want_timeout: int
) -> list[str]:
    diffs = []
    have_ids = {
        str(a.get("id", "")).lower() for a in have.get("approvers") or [] if isinstance(a, dict)
    }
    want_ids = {a["id"].lower() for a in want["approvers"]}
    if have_ids != want_ids:
        diffs.append("approvers")
    if have.get("minRequiredApprovers") != want["minRequiredApprovers"]:
        diffs.append("min approvers")
    if (have.get("instructions") or "") != want["instructions"]:
        diffs.append("instructions")
    if bool(have.get("requesterCannotBeApprover")) != want["requesterCannotBeApprover"]:
        diffs.append("requester cannot approve")
    if have_timeout != want_timeout:
        diffs.append("timeout")
    return diffs


def _translate(exc: Exception, organization_url: str, token: str) -> Exception | None:
    """Map an azure-devops/msrest error to ours (None: not a service error); never echo the token."""
    from azure.devops.exceptions import AzureDevOpsClientRequestError, AzureDevOpsServiceError
    from msrest.exceptions import AuthenticationError, ClientRequestError, HttpOperationError

    from dbx_promote.redact import redact

    text = redact(" ".join(str(exc).split()), extra_secrets=[token] if token else [])
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "status_code", None)
    # A JSON 401/403 comes back as AzureDevOpsServiceError without a status code; its
    # typeKey (e.g. UnauthorizedRequestException) or TF400813 tells what it was.
    type_key = str(getattr(exc, "type_key", "") or "")
    refused = "Unauthorized" in type_key or "AccessCheck" in type_key or "TF400813" in text
    if status in (401, 403) or refused or isinstance(exc, AuthenticationError):
        return CredentialsError(
            f"Azure DevOps refused the token for {organization_url} ({text or status}); use a PAT "
            "with Environment (Read & manage) and Identity (Read) scopes in AZURE_DEVOPS_PAT, or "
            "map SYSTEM_ACCESSTOKEN for a build service allowed to administer environments"
        )
    service_errors = (
        AzureDevOpsServiceError,
        AzureDevOpsClientRequestError,
        ClientRequestError,
        HttpOperationError,
    )
    if isinstance(exc, service_errors):
        return AzureDevOpsError(f"Azure DevOps request failed at {organization_url}: {text}")
    return None
