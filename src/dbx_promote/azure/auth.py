"""Auth mode ``azure-pipelines``: an Entra ID token for Azure Databricks from a pipeline.

Inside an ``AzureCLI@2`` step with an Azure Resource Manager service connection that uses
workload identity federation, the task exports ``AZURESUBSCRIPTION_TENANT_ID``,
``AZURESUBSCRIPTION_CLIENT_ID`` and ``AZURESUBSCRIPTION_SERVICE_CONNECTION_ID``; the step
maps ``SYSTEM_ACCESSTOKEN: $(System.AccessToken)``. ``AzurePipelinesCredential`` trades the
pipeline's OIDC token for an Entra ID token for the Azure Databricks resource, which the
Databricks SDK sends as a bearer token. Unlike the ``az`` session, the credential fetches a
fresh OIDC token whenever it needs a new access token, so long deployments keep working.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dbx_promote.errors import CredentialsError

if TYPE_CHECKING:
    from databricks.sdk.config import Config as SdkConfig
    from databricks.sdk.credentials_provider import CredentialsStrategy

AUTH_TYPE = "azure-pipelines"
# The Azure Databricks first-party application (ARM_DATABRICKS_RESOURCE_ID in databricks-sdk).
DATABRICKS_SCOPE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"
# Refresh this long before expiry, so a request never leaves with a token that dies in flight.
REFRESH_MARGIN_SECONDS = 300

TENANT_VAR = "AZURESUBSCRIPTION_TENANT_ID"
CLIENT_VAR = "AZURESUBSCRIPTION_CLIENT_ID"
CONNECTION_VAR = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"
ACCESS_TOKEN_VAR = "SYSTEM_ACCESSTOKEN"
REQUIRED_VARS = (TENANT_VAR, CLIENT_VAR, CONNECTION_VAR, ACCESS_TOKEN_VAR)


# Returns an object with ``get_token(*scopes) -> AccessToken`` (an azure-identity credential).
CredentialFactory = Callable[..., Any]


def _default_factory(**kwargs: Any) -> Any:
    from azure.identity import AzurePipelinesCredential

    return AzurePipelinesCredential(**kwargs)


class AzurePipelinesTokenSource:
    """Entra ID access tokens for Azure Databricks, cached and refreshed before expiry.

    Thread-safe: the deploy engine calls :meth:`token` from many threads; only one of them
    fetches a new token while the others wait for it.

    :param tenant_id: Entra tenant of the service connection's app registration.
    :param client_id: client (application) id of that app registration.
    :param service_connection_id: the service connection's id (its ``resourceId``).
    :param system_access_token: the run's ``System.AccessToken``.
    :param credential_factory: builds the credential from the four values above plus
        ``credential_kwargs``; defaults to ``azure.identity.AzurePipelinesCredential``.
    :param clock: seconds since the epoch; a seam for tests.
    :param credential_kwargs: passed to the factory (e.g. ``authority=`` for a local fake).
    :raises CredentialsError: when a value is empty or the credential refuses them.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        service_connection_id: str,
        system_access_token: str,
        credential_factory: CredentialFactory | None = None,
        clock: Callable[[], float] = time.time,
        scope: str = DATABRICKS_SCOPE,
        **credential_kwargs: Any,
    ) -> None:
        values = {
            TENANT_VAR: tenant_id,
            CLIENT_VAR: client_id,
            CONNECTION_VAR: service_connection_id,
            ACCESS_TOKEN_VAR: system_access_token,
        }
        _require(values)
        self._system_access_token = system_access_token
        self._scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on = 0.0
        factory = credential_factory or _default_factory
        try:
            self._credential = factory(
                tenant_id=tenant_id,
                client_id=client_id,
                service_connection_id=service_connection_id,
                system_access_token=system_access_token,
                **credential_kwargs,
            )
        except ValueError as exc:
            raise CredentialsError(
                f"azure-pipelines auth: the service connection values were refused: "
                f"{self._safe(exc)}"
            ) from None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> AzurePipelinesTokenSource:
        """Build from the variables ``AzureCLI@2`` exports plus ``SYSTEM_ACCESSTOKEN``.

        :param env: the environment to read (default ``os.environ``).
        :param kwargs: passed to the constructor (``credential_factory``, ``authority``...).
        :raises CredentialsError: one line naming every missing variable.
        """
        import os

        source = os.environ if env is None else env
        values = {name: source.get(name, "") for name in REQUIRED_VARS}
        _require(values)
        return cls(
            tenant_id=values[TENANT_VAR],
            client_id=values[CLIENT_VAR],
            service_connection_id=values[CONNECTION_VAR],
            system_access_token=values[ACCESS_TOKEN_VAR],
            **kwargs,
        )

    def token(self) -> str:
        """A valid access token; fetched only when absent or within 5 minutes of expiry.

        :raises CredentialsError: the token could not be obtained (message never holds a token).
        """
        with self._lock:
            if self._token is None or self._clock() >= self._expires_on - REFRESH_MARGIN_SECONDS:
                self._token, self._expires_on = self._fetch()
            return self._token

    def _fetch(self) -> tuple[str, float]:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import CredentialUnavailableError

        try:
            access = self._credential.get_token(self._scope)
        except CredentialUnavailableError as exc:
            raise CredentialsError(
                f"azure-pipelines auth is unavailable: {self._safe(exc)} "
                "(run it in an Azure Pipelines job, inside AzureCLI@2 with a workload identity "
                "federation service connection)"
            ) from None
        except ClientAuthenticationError as exc:
            raise CredentialsError(
                f"azure-pipelines auth failed: {self._safe(exc)} (check the service connection, "
                "that SYSTEM_ACCESSTOKEN is mapped, and that the service principal exists)"
            ) from None
        return access.token, float(access.expires_on)

    def _safe(self, exc: BaseException) -> str:
        """First line of an error, with the system access token masked."""
        from dbx_promote.redact import redact

        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        first = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
        return redact(first, extra_secrets=[self._system_access_token])


def _require(values: Mapping[str, str]) -> None:
    missing = [name for name, value in values.items() if not value]
    if missing:
        hint = ""
        if ACCESS_TOKEN_VAR in missing:
            hint = f"; map it in the step: env: {{{ACCESS_TOKEN_VAR}: $(System.AccessToken)}}"
        raise CredentialsError(
            f"auth azure-pipelines needs {', '.join(missing)} "
            f"(run inside AzureCLI@2 with a workload identity federation service connection{hint})"
        )


def databricks_credentials_strategy(token_source: AzurePipelinesTokenSource) -> CredentialsStrategy:
    """A Databricks SDK credentials strategy (``auth_type() == "azure-pipelines"``).

    Use as ``Config(host=..., credentials_strategy=databricks_credentials_strategy(src))``;
    every request asks ``token_source`` for its (cached) token.
    """
    from databricks.sdk.credentials_provider import CredentialsStrategy

    class _Strategy(CredentialsStrategy):
        def auth_type(self) -> str:
            return AUTH_TYPE

        def __call__(self, cfg: SdkConfig) -> Callable[[], dict[str, str]]:
            return lambda: {"Authorization": f"Bearer {token_source.token()}"}

    return _Strategy()
