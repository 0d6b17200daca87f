"""Creating the `Workspace` for an environment: host, auth mode, timeouts.

Host and auth come from the config, then `DBX_PROMOTE_AUTH`, then the SDK's own sources;
a host that cannot be reached, or accepts connections and never answers, fails in seconds
instead of after the SDK's retry budget (see `Timeouts`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlparse

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from requests.adapters import BaseAdapter

from dbx_promote import __version__, envsettings
from dbx_promote.config import Environment, env_var_name, environment_host
from dbx_promote.errors import ConnectionFailed, CredentialsError
from dbx_promote.workspace import RetryPolicy, Workspace, _short

AUTH_ENV_VAR = "DBX_PROMOTE_AUTH"
RETRY_TIMEOUT_ENV_VAR = "DBX_PROMOTE_RETRY_TIMEOUT"
CONNECT_TIMEOUT_ENV_VAR = "DBX_PROMOTE_CONNECT_TIMEOUT"
# Where the preflight asks its question: cheap, unauthenticated, and already asked by the
# SDK of every host, so it is neither new traffic nor a new permission.
PROBE_PATH = "/.well-known/databricks-config"


@dataclass(frozen=True)
class Timeouts:
    """How long to wait on a workspace, in seconds.

    ``connect``: to connect, then again for the first answer, before anything else is sent
    (so a host that accepts connections and never answers fails within twice this).
    ``read``: every request's connect and read timeout (the SDK's ``http_timeout_seconds``)
    once the workspace has answered one API request; until then ``connect`` (`_FirstAnswer`).
    ``retry``: the SDK's budget for retrying one request.
    """

    connect: float = 10.0
    read: float = 60.0
    retry: float = 120.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Timeouts:
        """The defaults, with `DBX_PROMOTE_CONNECT_TIMEOUT` and `DBX_PROMOTE_RETRY_TIMEOUT`.

        Raises `ConfigError` (exit 2) for a value that is not a number of seconds.
        """
        get = partial(envsettings.seconds, environ=environ)
        return cls(
            connect=get(CONNECT_TIMEOUT_ENV_VAR, cls.connect),
            retry=get(RETRY_TIMEOUT_ENV_VAR, cls.retry),
        )


def _preflight(host: str, timeout: float) -> None:
    """Fail in seconds when the host cannot be reached or does not answer.

    Without this, the SDK's host-metadata probe waits its whole retry budget on a refused
    connection (minutes), and each request on a host that accepts the connection and never
    answers. Any HTTP answer will do: what it says is the SDK's business.
    """
    parsed = urlparse(host if "://" in host else f"https://{host}")
    if not parsed.hostname:
        raise ConnectionFailed(f"'{host}' is not a workspace URL")
    base = f"{parsed.scheme}://{parsed.netloc}"
    try:
        with (
            requests.get(
                base + PROBE_PATH, timeout=(timeout, timeout), allow_redirects=False, stream=True
            ) as answer,
            contextlib.suppress(requests.RequestException),
        ):
            # The answer is in; read a little of its body so that closing does not reset
            # the connection (never all of it: a hostile host may send no end).
            next(answer.iter_content(64 * 1024), None)
    except requests.ConnectTimeout:
        raise ConnectionFailed(
            f"cannot reach workspace {host}: no connection within {timeout:g} s"
        ) from None
    except requests.Timeout:
        raise ConnectionFailed(
            f"workspace {host} accepted the connection but did not answer within {timeout:g} s "
            "(a host that hangs, or a proxy or firewall holding the connection)"
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise ConnectionFailed(f"cannot reach workspace {host}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failed connection ("Connection refused"), found
    under the layers requests and urllib3 wrap around it."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.strerror:
            return e.strerror
        linked = [*e.args, getattr(e, "reason", None), e.__cause__, e.__context__]
        todo.extend(x for x in linked if isinstance(x, BaseException))
    return type(exc).__name__


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
    variables, ~/.databrickscfg). A host that cannot be reached or does not answer fails
    within twice `Timeouts.connect` (plus the SDK's own probe when only a profile names
    the host). Raises `CredentialsError`, `ConnectionFailed` or `ConfigError` (exit 2).
    """
    timeouts = Timeouts.from_env()
    env_host = environment_host(env)
    kwargs = _sdk_config(env, env_host)
    host = env_host or os.environ.get("DATABRICKS_HOST")
    if host:
        _preflight(host, timeouts.connect)
    config = _resolve(env, kwargs, timeouts)
    if not config.host:
        raise CredentialsError(
            f"no workspace host for environment '{env.name}': set 'host' in the config, "
            "DATABRICKS_HOST, or a profile"
        )
    if not host:
        _preflight(config.host, timeouts.connect)
    client = WorkspaceClient(config=config)
    _bound_first_answer(client, config.host, timeouts.connect)
    return Workspace(
        client,
        retry=retry,
        sleep=sleep,
        parallel=parallel or env.parallel,
        import_rate=env.import_rate or None,
    )


class _FirstAnswer(BaseAdapter):
    """Until the workspace has answered one API request, each request waits at most
    ``timeout`` for its answer and a timeout is final (`ConnectionFailed`).

    A host can answer the preflight and then hang on its API (a proxy that only passes some
    paths, a wedged control plane): the SDK would wait its 60 s read timeout and retry it
    within its 120 s budget. Once one answer came, the host is known to work and the usual
    timeouts apply, so a slow large export later on is not cut short.
    """

    def __init__(self, inner: BaseAdapter, host: str, timeout: float) -> None:
        super().__init__()
        self._inner, self._host, self._timeout = inner, host, timeout
        self._answered = False

    def send(  # type: ignore[override]  # requests passes these by name
        self, request: requests.PreparedRequest, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        if self._answered:
            return self._inner.send(request, timeout=timeout, **kwargs)
        try:
            answer = self._inner.send(request, timeout=self._timeout, **kwargs)
        except requests.ReadTimeout:
            raise ConnectionFailed(
                f"workspace {self._host} answered the connection check but not its API "
                f"within {self._timeout:g} s (a host or proxy that hangs on API requests)"
            ) from None
        self._answered = True
        return answer

    def close(self) -> None:
        self._inner.close()


def _bound_first_answer(client: WorkspaceClient, host: str, timeout: float) -> None:
    """Mount `_FirstAnswer` on the SDK's session (it has no setting for this); an SDK that
    keeps its session elsewhere keeps its own timeouts."""
    session = getattr(getattr(client.api_client, "_api_client", None), "_session", None)
    if isinstance(session, requests.Session):
        for prefix in ("https://", "http://"):
            session.mount(prefix, _FirstAnswer(session.get_adapter(prefix), host, timeout))


def _resolve(env: Environment, kwargs: dict[str, Any], timeouts: Timeouts) -> Config:
    """The SDK `Config`, its host-metadata probe bounded by the connect timeout.

    `Config()` asks the host for its metadata with the config's own timeouts and retry
    budget, and waits all of it on a host that never answers (two minutes and more) before
    carrying on without; the request timeouts are set once it is done.
    """
    try:
        config = Config(
            **kwargs,
            http_timeout_seconds=timeouts.connect,
            retry_timeout_seconds=math.ceil(timeouts.connect),
        )
    except ValueError as exc:
        raise CredentialsError(_auth_hint(env, exc, kwargs.get("auth_type"))) from None
    config.http_timeout_seconds = timeouts.read
    config.retry_timeout_seconds = math.ceil(timeouts.retry)
    return config


def _sdk_config(env: Environment, env_host: str | None) -> dict[str, Any]:
    """The SDK `Config` arguments for ``env``: host, auth mode, per-environment token."""
    auth = env.auth or os.environ.get(AUTH_ENV_VAR) or None
    # Per-environment overrides let one process reach two workspaces (Prod reading Test's
    # record for `requires`) when hosts come from pipeline variable groups, not the file.
    env_token = os.environ.get(env_var_name(env.name, "TOKEN"))
    kwargs: dict[str, Any] = {
        "product": "dbx-promote",
        "product_version": __version__,
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
