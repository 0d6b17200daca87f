"""The workspace adapter: which failures are retried, and what each becomes."""

from __future__ import annotations

import pytest

from dbx_promote.emulator import Fault
from dbx_promote.errors import (
    CredentialsError,
    ObjectExists,
    ObjectNotFound,
    WorkspaceError,
)
from dbx_promote.workspace import Pacer, RetryPolicy, Throttle, Workspace

from conftest import make_client


@pytest.fixture
def ws(emulator, fake_clock):
    return Workspace(
        make_client(emulator.url, fake_clock), sleep=fake_clock.sleep, retry=RetryPolicy(attempts=3)
    )


@pytest.mark.parametrize(
    "fault",
    [
        Fault(endpoint="import", status=429, error_code="REQUEST_LIMIT_EXCEEDED", retry_after=2),
        Fault(endpoint="import", status=503, error_code="TEMPORARILY_UNAVAILABLE"),
        Fault(endpoint="import", status=500, error_code="INTERNAL_ERROR"),
        Fault(endpoint="import", status=504, error_code="DEADLINE_EXCEEDED"),
        Fault(endpoint="import", drop=True),
    ],
    ids=["429", "503", "500", "504", "dropped"],
)
def test_transient_failures_of_an_upload_are_retried(ws, emulator, fault):
    ws.mkdirs("/Shared/x")
    emulator.add_fault(fault)
    ws.import_file("/Shared/x/a.txt", b"hello")
    assert emulator.read("/Shared/x/a.txt") == b"hello"
    assert ws.retries == 1


def test_retry_after_is_honoured(ws, emulator, fake_clock):
    ws.mkdirs("/Shared/x")
    emulator.add_fault(
        Fault(endpoint="import", status=429, error_code="REQUEST_LIMIT_EXCEEDED", retry_after=7)
    )
    ws.import_file("/Shared/x/a.txt", b"hello")
    assert any(7 <= s < 8 for s in fake_clock.sleeps)


def test_a_failure_that_outlasts_the_budget_is_one_clear_error(ws, emulator):
    ws.mkdirs("/Shared/x")
    emulator.add_fault(Fault(endpoint="import", status=500, times=-1))
    with pytest.raises(WorkspaceError, match="still failing after 3 attempts"):
        ws.import_file("/Shared/x/a.txt", b"hello")


def test_the_exclusive_create_is_never_resent(ws, emulator):
    ws.mkdirs("/Shared/x")
    emulator.add_fault(Fault(endpoint="import", drop=True))
    with pytest.raises(WorkspaceError, match="connection lost"):
        ws.create_file_exclusive("/Shared/x/lock.json", b"{}")


def test_errors_are_translated(ws, workspace_client):
    with pytest.raises(ObjectNotFound):
        ws.download("/Shared/nope")
    ws.mkdirs("/Shared/x")
    ws.create_file_exclusive("/Shared/x/lock.json", b"{}")
    with pytest.raises(ObjectExists):
        ws.create_file_exclusive("/Shared/x/lock.json", b"{}")
    assert ws.get_status("/Shared/nope") is None
    assert ws.list_dir("/Shared/nope") is None


def test_a_rejected_token_is_a_credentials_error(emulator, fake_clock):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    client = WorkspaceClient(
        config=Config(host=emulator.url, token="x", auth_type="pat", retry_timeout_seconds=5)
    )
    emulator.add_fault(Fault(endpoint="list", status=401, error_code="UNAUTHENTICATED"))
    with pytest.raises(CredentialsError, match="refused the credentials"):
        Workspace(client, sleep=fake_clock.sleep).list_dir("/Shared")


def test_list_tree_reports_folders_and_skips_the_state_folder(ws):
    ws.mkdirs("/Shared/app/a/b")
    ws.mkdirs("/Shared/app/.dbx-promote/releases")
    ws.import_file("/Shared/app/a/b/f.txt", b"1")
    paths = [o.path for o in ws.list_tree("/Shared/app")]
    assert "/Shared/app/a/b/f.txt" in paths and "/Shared/app/a/b" in paths
    assert "/Shared/app/.dbx-promote" in paths
    assert "/Shared/app/.dbx-promote/releases" not in paths
    assert ws.list_tree("/Shared/missing") == []


def test_throttle_halves_on_429_and_creeps_back():
    t = Throttle(8)
    t.on_throttled()
    t.on_throttled()
    assert t.limit == 2
    for _ in range(2):
        t.on_success()
    assert t.limit == 3


def test_pacer_spaces_calls_at_the_rate():
    now = [0.0]
    slept: list[float] = []
    pacer = Pacer(10, lambda s: slept.append(s), clock=lambda: now[0])
    for _ in range(4):
        pacer.wait()
    assert slept == pytest.approx([0.1, 0.2, 0.3])
    assert Pacer(None, slept.append).interval == 0
