"""Auth mode azure-pipelines: AzurePipelinesCredential → Entra ID token → Databricks SDK."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dbx_promote.azure.auth import (
    DATABRICKS_SCOPE,
    AzurePipelinesTokenSource,
    databricks_credentials_strategy,
)
from dbx_promote.errors import CredentialsError

from fake_entra import FakeEntra

SYSTEM_TOKEN = "system-access-token-0123456789"
TENANT = "11111111-2222-3333-4444-555555555555"
ENV = {
    "AZURESUBSCRIPTION_TENANT_ID": TENANT,
    "AZURESUBSCRIPTION_CLIENT_ID": "app-client-id",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID": "sc-id-42",
    "SYSTEM_ACCESSTOKEN": SYSTEM_TOKEN,
}


@pytest.fixture
def entra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEntra]:
    fake = FakeEntra(system_access_token=SYSTEM_TOKEN)
    fake.start(tmp_path)
    monkeypatch.setenv("SYSTEM_OIDCREQUESTURI", f"{fake.url}/oidc")
    yield fake
    fake.stop()


def real_source(entra: FakeEntra, **env: str) -> AzurePipelinesTokenSource:
    """A token source using the real AzurePipelinesCredential against the fake."""
    return AzurePipelinesTokenSource.from_env(
        {**ENV, **env}, authority=entra.url, connection_verify=str(entra.cafile)
    )


# --- configuration ------------------------------------------------------------------------


def test_missing_variables_are_named_in_one_line() -> None:
    with pytest.raises(CredentialsError) as err:
        AzurePipelinesTokenSource.from_env({})
    message = str(err.value)
    assert "\n" not in message
    for name in ENV:
        assert name in message
    assert "SYSTEM_ACCESSTOKEN: $(System.AccessToken)" in message
    assert err.value.exit_code == 2


def test_only_the_missing_variables_are_named() -> None:
    env = dict(ENV, AZURESUBSCRIPTION_CLIENT_ID="")
    with pytest.raises(CredentialsError) as err:
        AzurePipelinesTokenSource.from_env(env)
    assert "AZURESUBSCRIPTION_CLIENT_ID" in str(err.value)
    assert "AZURESUBSCRIPTION_TENANT_ID" not in str(err.value)
    assert "System.AccessToken" not in str(err.value)


# --- the real credential against a local fake Entra ID ------------------------------------


def test_token_comes_from_the_pipeline_oidc_exchange(entra: FakeEntra) -> None:
    assert real_source(entra).token() == "entra-token-1"

    oidc, token = entra.requests
    assert oidc["path"] == "/oidc"
    assert oidc["query"]["serviceConnectionId"] == ["sc-id-42"]
    assert oidc["headers"]["Authorization"] == f"Bearer {SYSTEM_TOKEN}"
    assert token["path"] == f"/{TENANT}/oauth2/v2.0/token"
    assert f"scope={DATABRICKS_SCOPE.replace('/', '%2F')}" in token["body"]
    assert "client_id=app-client-id" in token["body"]
    assert f"client_assertion={entra.oidc_token}" in token["body"]


def test_token_is_cached_while_valid(entra: FakeEntra) -> None:
    source = real_source(entra)
    assert source.token() == source.token() == "entra-token-1"
    assert len(entra.token_requests()) == 1


def test_expired_token_is_replaced(entra: FakeEntra) -> None:
    entra.expires_in = 1
    source = real_source(entra)
    assert source.token() == "entra-token-1"
    time.sleep(1.2)
    assert source.token() == "entra-token-2"
    # A fresh OIDC token is fetched for every new access token (robust for long deploys).
    assert [r["path"] for r in entra.requests].count("/oidc") == 2


def test_refused_system_access_token_is_a_credentials_error_without_the_token(
    entra: FakeEntra,
) -> None:
    source = real_source(entra, SYSTEM_ACCESSTOKEN="wrong-system-token-xyz")
    with pytest.raises(CredentialsError) as err:
        source.token()
    assert "\n" not in str(err.value)
    assert "wrong-system-token-xyz" not in str(err.value)


def test_entra_error_is_one_line_and_never_echoes_the_token(entra: FakeEntra) -> None:
    entra.fail_token_with = (
        400,
        {
            "error": "invalid_client",
            "error_description": f"AADSTS700016: app not found.\nassertion {SYSTEM_TOKEN}",
        },
    )
    with pytest.raises(CredentialsError) as err:
        real_source(entra).token()
    message = str(err.value)
    assert "\n" not in message
    assert SYSTEM_TOKEN not in message
    assert entra.oidc_token not in message


def test_outside_a_pipeline_the_credential_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SYSTEM_OIDCREQUESTURI", raising=False)
    with pytest.raises(CredentialsError, match="unavailable"):
        AzurePipelinesTokenSource.from_env(ENV).token()


# --- caching and refresh rules (fake credential, fake clock) ------------------------------


class FakeToken:
    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = int(expires_on)


class CountingCredential:
    def __init__(self, clock: list[float], lifetime: float = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.scopes: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        with self.lock:
            self.calls += 1
            self.scopes.append(scopes)
            time.sleep(0.01)  # widen the race window for the threading test
            return FakeToken(f"t{self.calls}", self.clock[0] + self.lifetime)


def counting_source(clock: list[float]) -> tuple[AzurePipelinesTokenSource, CountingCredential]:
    cred = CountingCredential(clock)
    source = AzurePipelinesTokenSource.from_env(
        ENV, credential_factory=lambda **kw: cred, clock=lambda: clock[0]
    )
    return source, cred


def test_token_is_refreshed_within_five_minutes_of_expiry() -> None:
    clock = [1_000_000.0]
    source, cred = counting_source(clock)
    assert source.token() == "t1"
    clock[0] += 3600 - 301
    assert source.token() == "t1"
    clock[0] += 2  # now 299 s before expiry
    assert source.token() == "t2"
    assert cred.scopes == [(DATABRICKS_SCOPE,), (DATABRICKS_SCOPE,)]


def test_concurrent_callers_share_one_fetch() -> None:
    source, cred = counting_source([1_000_000.0])
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(source.token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["t1"] * 8
    assert cred.calls == 1


# --- handed to the Databricks SDK ----------------------------------------------------------


@pytest.fixture
def recording_workspace() -> Iterator[tuple[str, list[str]]]:
    """A minimal workspace that records the Authorization header of SCIM ``Me`` calls.

    (The SDK may first probe host metadata without credentials; that is not ours to test.)
    """
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if "/scim/" in self.path:
                seen.append(self.headers.get("Authorization", ""))
            body = json.dumps({"id": "1", "userName": "sp@example.com"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_sdk_sends_the_entra_token_as_bearer(
    entra: FakeEntra, recording_workspace: tuple[str, list[str]]
) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    host, seen = recording_workspace
    strategy = databricks_credentials_strategy(real_source(entra))
    assert strategy.auth_type() == "azure-pipelines"
    client = WorkspaceClient(config=Config(host=host, credentials_strategy=strategy))

    assert client.current_user.me().user_name == "sp@example.com"
    assert seen == ["Bearer entra-token-1"]


def test_sdk_against_the_workspace_emulator(entra: FakeEntra, emulator: Any) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    strategy = databricks_credentials_strategy(real_source(entra))
    client = WorkspaceClient(config=Config(host=emulator.url, credentials_strategy=strategy))
    client.workspace.mkdirs("/Shared/azure-pipelines-auth")
    assert client.workspace.get_status("/Shared/azure-pipelines-auth").path
    assert len(entra.token_requests()) == 1  # one token for the whole session of calls
