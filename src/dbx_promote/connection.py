"""Creating the `Workspace` for an environment: host, auth mode, timeouts.

Host and auth come from the config, then `DBX_PROMOTE_AUTH`, then the SDK's own sources;
a host that cannot be reached fails in seconds instead of after the SDK's retry budget.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config

from dbx_promote import __version__
from dbx_promote.config import Environment, env_var_name, environment_host
from dbx_promote.errors import ConnectionFailed, CredentialsError
from dbx_promote.workspace import RetryPolicy, Workspace, _short

AUTH_ENV_VAR = "DBX_PROMOTE_AUTH"
RETRY_TIMEOUT_ENV_VAR = "DBX_PROMOTE_RETRY_TIMEOUT"


def _preflight(host: str, timeout: float = 5.0) -> None:
    """Fail in seconds when the host cannot be reached.

    Without this, the SDK's host-metadata probe retries a refused connection for its
    whole retry budget (five minutes by default) before saying anything.
    """
    parsed = urlparse(host if "://" in host else f"https://{host}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if not parsed.hostname:
        raise ConnectionFailed(f"'{host}' is not a workspace URL")
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConnectionFailed(f"cannot reach workspace {host}: {reason}") from None


def connect(
    env: Environment,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    parallel: int | None = None,
) -> Workspace:
    """A `Workspace` for ``env`` using the SDK's unified auth (or `azure-pipelines`).

    Host and auth come from, in order: the environment's ``host``/``profile``/``auth`` in
    the config, then `DBX_PROMOTE_AUTH`, then the SDK's own sources (`DATABRICKS_*`
    variables, ~/.databrickscfg). Raises `CredentialsError` or `ConnectionFailed` (exit 2).
    """
    env_host = environment_host(env)
    kwargs = _sdk_config(env, env_host)
    host = env_host or os.environ.get("DATABRICKS_HOST")
    if host:
        _preflight(host)
    try:
        config = Config(**kwargs)
    except ValueError as exc:
        raise CredentialsError(_auth_hint(env, exc, kwargs.get("auth_type"))) from None
    if not config.host:
        raise CredentialsError(
            f"no workspace host for environment '{env.name}': set 'host' in the config, "
            "DATABRICKS_HOST, or a profile"
        )
    if not host:
        _preflight(config.host)
    client = WorkspaceClient(config=config)
    return Workspace(
        client,
        retry=retry,
        sleep=sleep,
        parallel=parallel or env.parallel,
        import_rate=env.import_rate or None,
    )


def _sdk_config(env: Environment, env_host: str | None) -> dict[str, Any]:
    """The SDK `Config` arguments for ``env``: host, auth mode, per-environment token."""
    auth = env.auth or os.environ.get(AUTH_ENV_VAR) or None
    # Per-environment overrides let one process reach two workspaces (Prod reading Test's
    # record for `requires`) when hosts come from pipeline variable groups, not the file.
    env_token = os.environ.get(env_var_name(env.name, "TOKEN"))
    kwargs: dict[str, Any] = {
        "product": "dbx-promote",
        "product_version": __version__,
        "retry_timeout_seconds": int(os.environ.get(RETRY_TIMEOUT_ENV_VAR, "120")),
        "http_timeout_seconds": 60,
    }
    if env_host:
        kwargs["host"] = env_host
    if env_token and not env.profile and auth in (None, "pat"):
        kwargs["token"] = env_token
        auth = "pat"
    if env.profile:
        kwargs["profile"] = env.profile
    if auth == "azure-pipelines":
        from dbx_promote.azure.auth import (
            AzurePipelinesTokenSource,
            databricks_credentials_strategy,
        )

        kwargs["credentials_strategy"] = databricks_credentials_strategy(
            AzurePipelinesTokenSource.from_env()
        )
    elif auth:
        kwargs["auth_type"] = auth
    return kwargs


def _auth_hint(env: Environment, exc: ValueError, auth: str | None = None) -> str:
    text = _short(exc)
    if auth in ("github-oidc", "github-oidc-azure"):
        # The SDK finds no token when the job may not ask for one: say what GitHub needs,
        # worded so that the redaction of "token: <value>" leaves it readable.
        no_token = ""
        if not os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            no_token = " (the job got no OIDC ID token; grant it the `id-token` permission, set to `write`)"
        return (
            f"environment '{env.name}': GitHub OIDC sign-in failed{no_token}; set "
            "DATABRICKS_CLIENT_ID to the service principal's application id and give it a "
            "federation policy for this repository's subject (docs/github-actions.md)"
        )
    if "more than one authorization method" in text:
        return (
            f"environment '{env.name}': more than one kind of credentials is set "
            "(e.g. DATABRICKS_TOKEN and DATABRICKS_CLIENT_SECRET); keep one, or set 'auth'"
        )
    if "profile" in text and "has no" in text:
        return f"environment '{env.name}': profile '{env.profile}' is not in ~/.databrickscfg"
    return (
        f"no Databricks credentials for environment '{env.name}': set DATABRICKS_HOST and "
        "DATABRICKS_TOKEN, use 'profile' in the config, or 'auth: azure-pipelines' in a pipeline"
    )
