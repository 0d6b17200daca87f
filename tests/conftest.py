"""Shared fixtures: a clean environment, the workspace emulator, and SDK clients for it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import Clock
from databricks.sdk.core import Config

from dbx_promote.emulator import Emulator

TEST_TOKEN = "dapi-test-token-not-secret"

_SCRUBBED_PREFIXES = (
    "DATABRICKS_",
    "ARM_",
    "AZURE_",
    "SYSTEM_",
    "GOOGLE_CREDENTIALS",
    "ACTIONS_ID_TOKEN_",
    "TF_BUILD",
    "BUILD_",
    "DBX_PROMOTE_",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove credentials, CI and proxy influence so tests see only what they set."""
    for name in list(os.environ):
        if name.upper().startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/databrickscfg")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


class FakeClock(Clock):
    """A clock for the SDK's retry loop: ``sleep`` advances ``time`` and is recorded."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fresh `FakeClock`."""
    return FakeClock()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    """One in-memory emulator on a free loopback port for the whole session."""
    emu = Emulator().start("127.0.0.1", 0)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The session emulator, emptied and with default settings for this test."""
    emulator_server.reset(settings=True)
    return emulator_server


@pytest.fixture
def second_emulator() -> Iterator[Emulator]:
    """A separate emulator (its own workspace) for two-workspace tests."""
    emu = Emulator(workspace_id="434343").start("127.0.0.1", 0)
    try:
        yield emu
    finally:
        emu.stop()


def make_client(url: str, clock: FakeClock, token: str = TEST_TOKEN) -> WorkspaceClient:
    """A PAT `WorkspaceClient` for an emulator, with short timeouts and a fake retry clock."""
    return WorkspaceClient(
        config=Config(
            host=url,
            token=token,
            auth_type="pat",
            retry_timeout_seconds=5,
            http_timeout_seconds=5,
            clock=clock,
        )
    )


@pytest.fixture
def workspace_client(emulator: Emulator, fake_clock: FakeClock) -> WorkspaceClient:
    """The real SDK client for ``emulator``."""
    return make_client(emulator.url, fake_clock)


@pytest.fixture
def workspace_client_factory(fake_clock: FakeClock) -> Callable[[str], WorkspaceClient]:
    """Build a client like ``workspace_client`` for any emulator URL (e.g. a second one)."""
    return lambda url: make_client(url, fake_clock)
