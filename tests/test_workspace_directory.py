"""`Workspace.import_directory`: one request per folder, never sent twice blindly, and a
refusal told apart from a fault."""

from __future__ import annotations

import io
import zipfile

import pytest

from dbx_promote.emulator import Fault
from dbx_promote.errors import BulkImportRefused, ObjectExists, WorkspaceError
from dbx_promote.workspace import RetryPolicy, Workspace

from conftest import make_client

PY = b"# Databricks notebook source\nprint(1)\n"


def archive(top: str = "proj") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(f"{top}/a.py", PY)
        zf.writestr(f"{top}/sub/b.py", PY)
    return out.getvalue()


@pytest.fixture
def ws(emulator, fake_clock):
    return Workspace(
        make_client(emulator.url, fake_clock), sleep=fake_clock.sleep, retry=RetryPolicy(attempts=3)
    )


def calls(emulator) -> list[tuple[str, int]]:
    return [(r["endpoint"], r["status"]) for r in emulator.request_log()]


def test_a_folder_lands_in_one_import_request(ws, emulator):
    ws.import_directory("/Shared/proj", archive())
    assert set(emulator.tree("/Shared/proj")) == {
        "/Shared/proj",
        "/Shared/proj/a",
        "/Shared/proj/sub",
        "/Shared/proj/sub/b",
    }
    assert calls(emulator) == [("import", 200)]


def test_an_existing_folder_is_object_exists(ws, emulator):
    ws.mkdirs("/Shared/proj")
    with pytest.raises(ObjectExists):
        ws.import_directory("/Shared/proj", archive())


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "BAD_REQUEST"), (403, "PERMISSION_DENIED"), (501, "NOT_IMPLEMENTED")],
)
def test_a_refusal_is_bulk_import_refused_and_not_retried(ws, emulator, status, code):
    emulator.add_fault(Fault(endpoint="import", status=status, error_code=code, times=-1))
    with pytest.raises(BulkImportRefused) as exc:
        ws.import_directory("/Shared/proj", archive())
    assert exc.value.status == status
    assert calls(emulator) == [("import", status)]


def test_the_refuse_control_is_a_refusal(ws, emulator):
    emulator.set_directory_import("refuse")
    with pytest.raises(BulkImportRefused):
        ws.import_directory("/Shared/proj", archive())


def test_a_500_that_did_not_land_is_looked_up_then_sent_again(ws, emulator):
    emulator.add_fault(Fault(endpoint="import", status=500))
    ws.import_directory("/Shared/proj", archive())
    assert calls(emulator) == [("import", 500), ("get-status", 404), ("import", 200)]
    assert "/Shared/proj/sub/b" in emulator.tree("/Shared/proj")


def test_a_500_after_the_folder_landed_is_not_sent_again(ws, emulator):
    emulator.add_fault(Fault(endpoint="import", status=500, after=True))
    ws.import_directory("/Shared/proj", archive())
    assert calls(emulator) == [("import", 500), ("get-status", 200)]
    assert "/Shared/proj/sub/b" in emulator.tree("/Shared/proj")


def test_a_dropped_answer_after_the_folder_landed_is_object_exists(ws, emulator):
    """The SDK itself resends a JSON import after a dropped connection; the resend finds
    the folder, so the caller cannot tell whose it is and imports it object by object."""
    emulator.add_fault(Fault(endpoint="import", drop=True, after=True))
    with pytest.raises(ObjectExists):
        ws.import_directory("/Shared/proj", archive())
    assert calls(emulator) == [("import", 0), ("import", 400)]


def test_a_throttled_directory_import_is_retried(ws, emulator):
    emulator.add_fault(
        Fault(endpoint="import", status=429, error_code="REQUEST_LIMIT_EXCEEDED", retry_after=0)
    )
    ws.import_directory("/Shared/proj", archive())
    assert "/Shared/proj/a" in emulator.tree("/Shared/proj")


def test_a_fault_that_outlasts_the_retries_is_a_workspace_error_not_a_refusal(ws, emulator):
    emulator.add_fault(Fault(endpoint="import", status=500, times=-1))
    with pytest.raises(WorkspaceError) as exc:
        ws.import_directory("/Shared/proj", archive())
    assert not isinstance(exc.value, BulkImportRefused)
    assert emulator.tree("/Shared/proj") == {}
