"""Emulator controls: faults, latency, rate limit, counters, log, hand edits, persistence,
concurrency, the error shape of bad requests, the control API and the CLI."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    InternalError,
    RequestLimitExceeded,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
    TooManyRequests,
)
from databricks.sdk.service.workspace import ImportFormat, Language, ObjectType

from dbx_promote.emulator import ApiError, Emulator, EmulatorControl, Fault
from dbx_promote.emulator.store import parse_path

TOKEN = "Bearer dapi-test-token-not-secret"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def raw_request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request over a fresh connection, bypassing the SDK."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        all_headers = {"Authorization": TOKEN, **(headers or {})}
        conn.request(method, path, body=body, headers=all_headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --- faults ----------------------------------------------------------------------------


def test_fault_fails_only_the_nth_matching_request(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(endpoint="get-status", nth=2))
    w = workspace_client
    w.workspace.get_status("/Shared")
    with pytest.raises(InternalError):
        w.workspace.get_status("/Shared")
    w.workspace.get_status("/Shared")
    assert [e["fault"] for e in emulator.request_log()] == [False, True, False]


def test_fault_matches_path_glob_and_writes_only(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(path_glob="/Shared/bad*", writes_only=True, times=-1, status=500))
    w = workspace_client
    w.workspace.upload("/Shared/good.py", b"1")
    with pytest.raises(InternalError):
        w.workspace.upload("/Workspace/Shared/bad.py", b"1")
    with pytest.raises(ResourceDoesNotExist):  # a read on the same path is not faulted
        w.workspace.get_status("/Shared/bad.py")
    emulator.clear_faults()
    w.workspace.upload("/Shared/bad.py", b"1")


def test_429_with_retry_after_is_retried_by_the_sdk(
    workspace_client: WorkspaceClient, emulator: Emulator, fake_clock: Any
) -> None:
    emulator.add_fault(
        Fault(
            endpoint="import",
            times=2,
            status=429,
            error_code="REQUEST_LIMIT_EXCEEDED",
            retry_after=1,
        )
    )
    workspace_client.workspace.import_(
        "/Shared/r.py", content=b64(b"1"), format=ImportFormat.SOURCE, language=Language.PYTHON
    )
    assert emulator.counters()["by_status"] == {"429": 2, "200": 1}
    assert len(fake_clock.sleeps) == 2
    assert all(1 <= s < 2 for s in fake_clock.sleeps)


def test_upload_is_not_retried_on_503(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.add_fault(
        Fault(endpoint="import", status=503, error_code="TEMPORARILY_UNAVAILABLE", retry_after=1)
    )
    with pytest.raises(TemporarilyUnavailable):
        workspace_client.workspace.upload("/Shared/u.py", b"1")
    assert emulator.counters()["by_endpoint"] == {"import": 1}


def test_500_with_unexpected_error_message_is_retried(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(endpoint="list", message="Unexpected error, try again"))
    assert list(workspace_client.workspace.list("/Shared")) == []
    assert emulator.counters()["by_status"] == {"500": 1, "200": 1}


def test_dropped_connection_is_retried_and_logged_as_status_zero(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(endpoint="get-status", drop=True))
    assert workspace_client.workspace.get_status("/Shared").object_type == ObjectType.DIRECTORY
    log = emulator.request_log()
    assert [(e["status"], e["fault"]) for e in log] == [(0, True), (200, False)]


def test_connection_dropped_forever_ends_in_timeout_error(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.add_fault(Fault(endpoint="get-status", drop=True, times=-1))
    with pytest.raises(TimeoutError):
        workspace_client.workspace.get_status("/Shared")


def test_fault_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Fault(nth=0)
    with pytest.raises(ValueError):
        Fault(times=0)
    with pytest.raises(ValueError):
        Fault(endpoint="(unclosed")


# --- latency and rate limit ------------------------------------------------------------


def test_latency_delays_each_request_and_parallel_requests_overlap(
    workspace_client: WorkspaceClient,
    emulator: Emulator,
    workspace_client_factory: Callable[[str], WorkspaceClient],
) -> None:
    emulator.set_latency(100)
    start = time.monotonic()
    workspace_client.workspace.get_status("/Shared")
    assert time.monotonic() - start >= 0.1
    clients = [workspace_client_factory(emulator.url) for _ in range(8)]
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: c.workspace.get_status("/Shared"), clients))
    assert time.monotonic() - start < 0.5


def test_import_rate_limit_answers_429_with_retry_after(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.set_import_rate_limit(5)
    limited = 0
    for i in range(15):
        try:
            workspace_client.workspace.upload(f"/Shared/n{i}.py", b"1")
        except RequestLimitExceeded as exc:
            assert isinstance(exc, TooManyRequests)
            limited += 1
    assert limited >= 5
    assert emulator.counters()["by_status"]["429"] == limited
    status, headers, body = raw_request(
        emulator.url,
        "POST",
        "/api/2.0/workspace/import",
        json.dumps({"path": "/Shared/z.py", "content": b64(b"1"), "language": "PYTHON"}).encode(),
    )
    assert status == 429 and headers["retry-after"] == "1"
    assert json.loads(body)["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    emulator.set_import_rate_limit(None)
    workspace_client.workspace.upload("/Shared/after.py", b"1")


# --- counters, log, reset --------------------------------------------------------------


def test_counters_count_api_calls_but_not_probe_or_controls(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    w = workspace_client
    w.workspace.mkdirs("/Shared/c")
    w.workspace.upload("/Shared/c/a.py", b"1")
    w.workspace.get_status("/Shared/c/a.py")
    list(w.workspace.list("/Shared/c"))
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.delete("/Shared/c/missing")
    w.current_user.me()
    EmulatorControl(emulator.url).tree()
    counts = emulator.counters()
    assert counts["total"] == 6
    assert counts["writes"] == 3 and counts["reads"] == 3
    assert counts["by_endpoint"]["import"] == 1
    assert counts["by_status"] == {"200": 5, "404": 1}
    log = emulator.request_log()
    assert [e["seq"] for e in log] == list(range(1, 7))
    assert log[1] == {**log[1], "method": "POST", "endpoint": "import", "path": "/Shared/c/a.py"}


def test_reset_empties_tree_and_stats_but_keeps_settings(emulator: Emulator) -> None:
    emulator.set_latency(5)
    emulator.store.mkdirs(parse_path("/Shared/x"))
    emulator.add_fault(Fault())
    emulator.reset()
    assert sorted(emulator.tree()) == [
        "/",
        "/Repos",
        "/Shared",
        "/Users",
        "/Users/emulator@example.com",
    ]
    assert emulator.counters()["total"] == 0
    assert emulator.controls.latency_ms == 5
    emulator.reset(settings=True)
    assert emulator.controls.latency_ms == 0


# --- tree, read, hand edit --------------------------------------------------------------


def test_tree_hashes_match_stored_content(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    workspace_client.workspace.upload("/Shared/t.py", b"x = 1")
    entry = emulator.tree("/Shared")["/Shared/t.py"]
    stored = emulator.read("/Shared/t.py")
    assert entry["sha256"] == hashlib.sha256(stored).hexdigest()
    assert entry["size"] == len(stored) and entry["language"] == "PYTHON"


def test_hand_edit_changes_content_and_modified_at_but_keeps_object_id(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    w = workspace_client
    w.workspace.upload("/Shared/h.py", b"x = 1")
    before = w.workspace.get_status("/Shared/h.py")
    emulator.hand_edit("/Shared/h.py")
    after = w.workspace.get_status("/Shared/h.py")
    assert after.object_id == before.object_id
    assert after.modified_at is not None and before.modified_at is not None
    assert after.modified_at > before.modified_at
    assert b"# COMMAND ----------" in emulator.read("/Shared/h.py")
    emulator.hand_edit("/Shared/h.py", b"y = 2")
    assert emulator.read("/Shared/h.py") == b"# Databricks notebook source\ny = 2"


def test_hand_edit_of_missing_path_raises_api_error(emulator: Emulator) -> None:
    with pytest.raises(ApiError) as exc:
        emulator.hand_edit("/Shared/missing")
    assert exc.value.status == 404


# --- persistence, concurrency, two workspaces ---------------------------------------------


def test_restart_with_same_state_dir_keeps_the_tree(
    tmp_path: Path, workspace_client_factory: Callable[[str], WorkspaceClient]
) -> None:
    with Emulator(state_dir=tmp_path) as first:
        w = workspace_client_factory(first.url)
        w.workspace.mkdirs("/Shared/keep")
        w.workspace.upload("/Shared/keep/nb.py", b"1")
        before = first.tree()
    assert (tmp_path / "workspace.db").exists()
    with Emulator(state_dir=tmp_path) as second:
        assert second.tree() == before
        w = workspace_client_factory(second.url)
        w.workspace.upload("/Shared/keep/new.py", b"2")
        ids = [v["object_id"] for v in second.tree().values()]
        assert len(ids) == len(set(ids))


def test_sixteen_threads_import_500_notebooks(
    emulator: Emulator, workspace_client_factory: Callable[[str], WorkspaceClient]
) -> None:
    emulator.store.mkdirs(parse_path("/Shared/many"))
    local = threading.local()

    def upload(i: int) -> None:
        if not hasattr(local, "w"):
            local.w = workspace_client_factory(emulator.url)
        local.w.workspace.upload(f"/Shared/many/nb{i:03}.py", f"x = {i}".encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, range(500)))
    tree = emulator.tree("/Shared/many")
    assert sum(1 for v in tree.values() if v["object_type"] == "NOTEBOOK") == 500
    assert emulator.counters()["by_status"] == {"200": 500}


def test_two_emulators_are_separate_workspaces(
    emulator: Emulator,
    second_emulator: Emulator,
    workspace_client_factory: Callable[[str], WorkspaceClient],
) -> None:
    a = workspace_client_factory(emulator.url)
    b = workspace_client_factory(second_emulator.url)
    a.workspace.upload("/Shared/only-a.py", b"1")
    with pytest.raises(ResourceDoesNotExist):
        b.workspace.get_status("/Shared/only-a.py")
    assert b.config.workspace_id == "434343"


# --- bad requests get the error shape ------------------------------------------------------

BAD_REQUESTS = [
    # (method, path, body, content type, status, error_code)
    ("POST", "/api/2.0/workspace/move", b"{}", "application/json", 404, "ENDPOINT_NOT_FOUND"),
    ("GET", "/api/2.0/nothing/here", None, None, 404, "ENDPOINT_NOT_FOUND"),
    ("GET", "/nothing", None, None, 404, "ENDPOINT_NOT_FOUND"),
    ("POST", "/api/2.0/workspace/mkdirs", b"{not json", "application/json", 400, "MALFORMED_REQUEST"),
    ("POST", "/api/2.0/workspace/mkdirs", b"[1, 2]", "application/json", 400, "MALFORMED_REQUEST"),
    ("POST", "/api/2.0/workspace/mkdirs", b"{}", "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/mkdirs", b'{"path": "rel"}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/import", b'{"path": "/Shared/x", "content": "!!!"}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/import", b'{"path": "/Shared/x"}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/import", b'{"path": "/Shared/x", "content": "", "format": "source"}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/import", b'{"path": "/Shared/x", "content": "", "language": "JAVA"}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/import", b'{"path": "/Shared/x", "content": "", "overwrite": "maybe"}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/api/2.0/workspace/import", b"--x--", "multipart/form-data", 400, "MALFORMED_REQUEST"),
    ("POST", "/api/2.0/workspace/delete", b'{"path": "/Shared", "recursive": 3}', "application/json", 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/api/2.0/workspace/get-status", None, None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/api/2.0/workspace/get-status?path=/a/../b", None, None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/api/2.0/workspace/export?path=/Shared&format=PDF", None, None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/api/2.0/workspace/list?path=/Shared&notebooks_modified_after=x", None, None, 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", "/api/2.0/workspace/delete", None, None, 405, "METHOD_NOT_ALLOWED"),
    ("POST", "/api/2.0/workspace/list", b"{}", "application/json", 405, "METHOD_NOT_ALLOWED"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "ctype", "status", "code"), BAD_REQUESTS)
def test_bad_requests_get_the_service_error_shape(
    emulator: Emulator,
    method: str,
    path: str,
    body: bytes | None,
    ctype: str | None,
    status: int,
    code: str,
) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    got_status, got_headers, raw = raw_request(emulator.url, method, path, body, headers)
    assert got_status == status
    assert got_headers["content-type"] == "application/json"
    data = json.loads(raw)
    assert set(data) == {"error_code", "message"} and data["error_code"] == code
    assert "Traceback" not in data["message"]


@pytest.mark.parametrize("auth", [None, "", "Bearer"])
def test_missing_authorization_is_401(emulator: Emulator, auth: str | None) -> None:
    parts = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    headers = {} if auth is None else {"Authorization": auth}
    conn.request("GET", "/api/2.0/workspace/get-status?path=/", headers=headers)
    resp = conn.getresponse()
    assert resp.status == 401
    assert json.loads(resp.read())["error_code"] == "UNAUTHENTICATED"
    conn.close()


def test_keep_alive_connection_survives_an_error(emulator: Emulator) -> None:
    parts = urlsplit(emulator.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    for body in (b"{bad", b'{"path": "/Shared/k"}'):
        conn.request(
            "POST", "/api/2.0/workspace/mkdirs", body=body, headers={"Authorization": TOKEN}
        )
        conn.getresponse().read()
    conn.close()
    assert "/Shared/k" in emulator.tree()


# --- control API over HTTP ----------------------------------------------------------------


def test_emulator_control_drives_a_remote_emulator(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    control = EmulatorControl(emulator.url)
    workspace_client.workspace.upload("/Shared/c.py", b"1")
    assert control.read("/Shared/c.py") == b"# Databricks notebook source\n1"
    control.hand_edit("/Shared/c.py", b"2")
    assert emulator.read("/Shared/c.py").endswith(b"\n2")
    assert control.tree("/Shared")["/Shared/c.py"]["object_type"] == "NOTEBOOK"
    control.add_fault(Fault(endpoint="get-status", status=500))
    with pytest.raises(InternalError):
        workspace_client.workspace.get_status("/Shared/c.py")
    assert control.counters()["by_status"]["500"] == 1
    assert control.request_log()[-1]["fault"] is True
    control.set_latency(1)
    control.set_import_rate_limit(2.5)
    assert emulator.controls.latency_ms == 1 and emulator.controls.import_rate_limit == 2.5
    control.clear_faults()
    control.reset(settings=True)
    assert "/Shared/c.py" not in emulator.tree()
    assert emulator.controls.import_rate_limit is None
    with pytest.raises(ApiError) as exc:
        control.read("/Shared/c.py")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(ApiError) as exc:
        control._call("POST", "faults", {"nth": 0})
    assert exc.value.status == 400


# --- CLI ---------------------------------------------------------------------------------


def test_cli_serve_prints_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "dbx_promote", "emulator", "serve", "--port", "0"]
    cmd += ["--state", str(tmp_path / "state"), "--user", "me@example.com"]
    cmd += ["--cluster", "c-2", "--cluster", "c-1", "--run-start-delay", "1.5", "--no-exec"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("Emulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        status, _, body = raw_request(url, "GET", "/api/2.0/preview/scim/v2/Me")
        assert status == 200 and json.loads(body)["userName"] == "me@example.com"
        assert EmulatorControl(url).job_settings() == {
            "start_delay_s": 1.5,
            "clusters": ["c-1", "c-2"],
            "execute": False,
        }
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == b""
    assert (tmp_path / "state" / "workspace.db").exists()


def test_cli_serve_on_a_busy_port_fails_with_one_line(emulator: Emulator) -> None:
    port = str(urlsplit(emulator.url).port)
    cmd = [sys.executable, "-m", "dbx_promote", "emulator", "serve", "--port", port]
    proc = subprocess.run(cmd, capture_output=True, timeout=30, env=os.environ)
    assert proc.returncode == 1
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot start the emulator")
    assert proc.stdout == b""
