"""The conformance suite (tests/conformance_*.py rows): the emulator gives every documented
answer, and the live mode — run against a real workspace by `make conformance-live` — works
only in a scratch folder it removes, and reports row by row.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from conformance_directory import ROWS as DIRECTORY_ROWS
from conformance_jobs import ROWS as JOBS_ROWS
from conformance_permissions import OWNER_TOKEN, PRINCIPALS
from conformance_permissions import ROWS as PERMISSIONS_ROWS
from conformance_suite import SCRATCH_PREFIX, Behaviour, run_live, run_row, write_report
from conformance_workspace import ROWS as WORKSPACE_ROWS
from dbx_promote.emulator import Emulator

from conftest import FakeClock, make_client

ROWS: list[Behaviour] = [*WORKSPACE_ROWS, *DIRECTORY_ROWS, *JOBS_ROWS, *PERMISSIONS_ROWS]

# Read before the autouse fixture scrubs credentials from the environment: live runs use
# the caller's own auth.
_LIVE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k.startswith(("DATABRICKS_", "DBX_PROMOTE_LIVE_", "ARM_", "AZURE_"))
}


def test_rows_have_unique_names() -> None:
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_the_emulator_gives_the_documented_answer(
    row: Behaviour, workspace_client: WorkspaceClient, emulator: Emulator, fake_clock: FakeClock
) -> None:
    w, as_ = workspace_client, None
    if row.needs == "principals":
        # Other identities: the emulator enforces ACLs; the scratch folder is the owner's.
        for spec in PRINCIPALS:
            emulator.add_principal(spec)
        as_ = lambda token: make_client(emulator.url, fake_clock, token)  # noqa: E731
        w = as_(OWNER_TOKEN)
    user = str(w.current_user.me().user_name)
    base = f"/Users/{user}/conformance"
    got = run_row(row, w, base, user, compute={"serverless": True}, as_=as_)
    assert got == row.expected


def test_host_metadata_gives_workspace_id_without_a_warning(
    emulator: Emulator,
    workspace_client_factory: Callable[[str], WorkspaceClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Emulator only: it asserts the emulator's own counters."""
    with caplog.at_level(logging.WARNING, logger="databricks.sdk"):
        w = workspace_client_factory(emulator.url)
    assert w.config.workspace_id == "424242"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert emulator.counters()["total"] == 0  # the probe is not counted


def test_live_mode_works_only_in_a_scratch_folder_it_removes(
    emulator: Emulator,
    second_emulator: Emulator,
    fake_clock: FakeClock,
    tmp_path: Path,
) -> None:
    """A second emulator plays the real workspace; its request log is the evidence."""
    service = make_client(second_emulator.url, fake_clock)
    outcomes = run_live(
        service, make_client(emulator.url, fake_clock), ROWS, compute={"serverless": True}
    )
    report = write_report(outcomes, tmp_path, host=second_emulator.url)

    parsed = json.loads((tmp_path / "conformance-report.json").read_text())
    assert parsed == json.loads(json.dumps(report))
    assert parsed["summary"]["different"] == 0
    assert parsed["summary"]["ran"] + parsed["summary"]["skipped"] == len(ROWS)
    assert {r["name"] for r in parsed["rows"] if r["skipped"]} == {
        r.name for r in ROWS if not r.live
    }
    unv = [r for r in parsed["rows"] if r["unverified"]]
    assert unv and all(r["emulator_choice"] and r["test"].startswith("tests/") for r in unv)
    md = (tmp_path / "conformance-report.md").read_text()
    assert md.count("\n| ") == len(ROWS) + 1 and "[UNV]" in md

    scratch = f"/Users/{second_emulator.user}/{SCRATCH_PREFIX}"
    writes = [r for r in second_emulator.request_log() if r["method"] != "GET"]
    assert writes[0]["endpoint"] == "mkdirs" and writes[0]["path"].startswith(scratch)
    assert writes[-1]["endpoint"] == "delete" and writes[-1]["path"] == writes[0]["path"]
    outside = [r for r in writes if not (r["path"] or "").startswith(writes[0]["path"])]
    # The row that shows move does not exist (ENDPOINT_NOT_FOUND), and the one tiny run.
    assert sorted(r["endpoint"] for r in outside) == ["jobs/runs/submit", "move"]
    # Reads outside it: only the built-in folders above it (and requests naming no path:
    # SCIM Me, the run's status).
    builtin = {"/", "/Users", f"/Users/{second_emulator.user}", "/Shared", "/Repos"}
    reads = {r["path"] for r in second_emulator.request_log() if r["method"] == "GET"}
    assert {p for p in reads if p and not p.startswith(writes[0]["path"])} <= builtin
    [run] = second_emulator.job_runs()
    assert json.dumps(run).count(writes[0]["path"]) >= 1  # its notebook is in the scratch
    assert not [p for p in second_emulator.tree("/Users") if SCRATCH_PREFIX in p]


@pytest.mark.skipif(
    not _LIVE_ENV.get("DBX_PROMOTE_LIVE_HOST"), reason="DBX_PROMOTE_LIVE_HOST not set"
)
def test_live_workspace(
    emulator: Emulator, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make conformance-live`: the rows against a real workspace; writes the report."""
    for name, value in _LIVE_ENV.items():
        monkeypatch.setenv(name, value)
    if "DATABRICKS_CONFIG_FILE" not in _LIVE_ENV:
        monkeypatch.delenv("DATABRICKS_CONFIG_FILE", raising=False)
    host = _LIVE_ENV["DBX_PROMOTE_LIVE_HOST"]
    service = WorkspaceClient(config=Config(host=host, product="dbx-promote-conformance"))
    compute: dict[str, object] = {}
    if _LIVE_ENV.get("DBX_PROMOTE_LIVE_CLUSTER_ID"):
        compute = {"existing_cluster_id": _LIVE_ENV["DBX_PROMOTE_LIVE_CLUSTER_ID"]}
    elif _LIVE_ENV.get("DBX_PROMOTE_LIVE_SERVERLESS") == "1":
        compute = {"serverless": True}
    outcomes = run_live(service, make_client(emulator.url, fake_clock), ROWS, compute=compute)
    out = Path(_LIVE_ENV.get("DBX_PROMOTE_LIVE_REPORT_DIR", "."))
    report = write_report(outcomes, out, host=host)
    print(json.dumps(report["summary"]))
