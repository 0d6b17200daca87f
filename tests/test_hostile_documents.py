"""Documents dbx-promote does not control — an artifact's manifest, a folder's record,
history and lock — crafted or edited by hand (issue 13, items 5 and 6).

Everything they say that becomes a path, a name or a number is checked before the first
write: a bad one is exit 2 with one line naming the file and the field, and the workspace
is not written to.
"""

from __future__ import annotations

import json
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote.artifact import MANIFEST_NAME, Artifact
from dbx_promote.emulator import Emulator
from dbx_promote.errors import RecordCorrupt
from dbx_promote.record import Lock, Record

from cli_helpers import assert_error, run_cli
from deploy_helpers import ROOT, V1, V2, build, deploy

RECORD = f"{ROOT}/.dbx-promote/deployment.json"
HISTORY = f"{ROOT}/.dbx-promote/history.json"
LOCK = f"{ROOT}/.dbx-promote/lock.json"

CONFIG = f"""\
project: app
source: src
environments:
  test:
    root: {ROOT}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG)
    return path


def writes(emu: Emulator, since: int = 0) -> list[dict[str, Any]]:
    """The requests since ``since`` that changed the workspace."""
    return [r for r in emu.request_log()[since:] if r["method"] != "GET"]


def recraft(artifact: Artifact, out: Path, **manifest: Any) -> Path:
    """``artifact`` with its manifest's fields replaced: what a hostile build would ship."""
    with zipfile.ZipFile(artifact.path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    data = {**artifact.manifest.to_dict(), **manifest}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in entries:
            zf.writestr(name, json.dumps(data).encode() if name == MANIFEST_NAME else body)
    return out


# --- item 5: a manifest's names -------------------------------------------------------------


CRAFTED = {
    "version": "1.0.0/../../victim",
    "project": "app/../victim",
    "tool_version": "0.1.0/../x",
    "commit": "../../etc",
    "commit_time": "2026-01-01T00:00:00Z/../x",
}


@pytest.mark.parametrize("field", sorted(CRAFTED))
def test_verify_refuses_a_manifest_name_that_would_become_a_path(
    field: str, tmp_path: Path, cfg: Path
) -> None:
    bad = recraft(build(tmp_path, V1, "1.0.0"), tmp_path / "bad.zip", **{field: CRAFTED[field]})

    result = run_cli(cfg, "verify", str(bad), host=None)

    assert_error(result, 2, "bad.zip: invalid manifest", f"'{field}'", "rebuild it")


@pytest.mark.parametrize("field", ["version", "project"])
def test_deploy_refuses_a_crafted_manifest_before_any_write(
    field: str, emulator: Emulator, tmp_path: Path, cfg: Path
) -> None:
    deploy_result = run_cli(
        cfg, "deploy", str(build(tmp_path, V1, "1.0.0").path), "--env", "test", host=emulator.url
    )
    assert deploy_result.returncode == 0, deploy_result.stderr
    start = len(emulator.request_log())
    bad = recraft(build(tmp_path, V2, "2.0.0"), tmp_path / "bad.zip", **{field: CRAFTED[field]})

    for extra in ((), ("--dry-run",)):
        result = run_cli(cfg, "deploy", str(bad), "--env", "test", *extra, host=emulator.url)
        assert_error(result, 2, "invalid manifest", f"'{field}'")
    assert writes(emulator, start) == []
    assert "victim" not in json.dumps(emulator.tree("/Shared"))


def test_a_manifest_path_over_the_workspace_limit_is_refused(tmp_path: Path, cfg: Path) -> None:
    good = build(tmp_path, V1, "1.0.0")
    objects = good.manifest.to_dict()["objects"]
    objects[0] = {**objects[0], "path": "a/" * 2100 + "x.py", "workspace_path": "a/" * 2100 + "x"}
    bad = recraft(good, tmp_path / "bad.zip", objects=objects)

    assert_error(run_cli(cfg, "verify", str(bad), host=None), 2, "longer than 4096")


def test_a_manifest_nested_too_deeply_is_refused(tmp_path: Path, cfg: Path) -> None:
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr(MANIFEST_NAME, "[" * 100_000 + "]" * 100_000)

    assert_error(run_cli(cfg, "verify", str(bad), host=None), 2, "nested too deeply")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("_environment.py", "uses a name dbx-promote reserves"),
        (".dbx-promote/deployment.py", "uses a name dbx-promote reserves"),
        ("etl.py", "object 'etl' is also the folder of another object"),  # next to etl/...
    ],
)
def test_verify_refuses_a_manifest_the_folder_could_not_hold(
    path: str, why: str, tmp_path: Path, cfg: Path
) -> None:
    """What the deploy would refuse, or fail on half-way, verify refuses already."""
    good = build(tmp_path, V1, "1.0.0")
    objects = [o for o in good.manifest.to_dict()["objects"] if o["path"] != "reports/summary.py"]
    moved = {**good.manifest.to_dict()["objects"][-1], "path": path, "workspace_path": path[:-3]}
    objects = sorted([*objects, moved], key=lambda o: o["path"])
    bad = recraft(good, tmp_path / "bad.zip", objects=objects)

    assert_error(run_cli(cfg, "verify", str(bad), host=None), 2, "invalid manifest", why)


# --- item 6: a record's numbers, types and depth --------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit of the record: ``path`` is dotted, list indexes as numbers."""

    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return edit


# Each: an edit of a real record, and the field the one-line error must name.
BAD_RECORDS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a billion release parts": (_set("releases.0.parts", 10**9), "releases[0].parts"),
    "no release parts": (_set("releases.0.parts", 0), "releases[0].parts"),
    "parts as text": (_set("releases.0.parts", "3"), "releases[0].parts"),
    "negative object id": (
        _set("objects.etl/ingest.object_id", -1),
        "objects.etl/ingest.object_id",
    ),
    "huge modified_at": (
        _set("objects.etl/ingest.modified_at", 10**30),
        "objects.etl/ingest.modified_at",
    ),
    "verified as text": (_set("verified", "false"), "verified"),
    "version as a list": (_set("version", ["1.0.0"]), "version"),
    "digest with a path": (_set("digest", "sha256:../../x"), "digest"),
    "release digest garbage": (_set("releases.0.digest", "x" * 10_000), "releases[0].digest"),
    "a megabyte project": (_set("project", "p" * 1_000_000), "project"),
    "object kind unknown": (
        _set("objects.etl/ingest.kind", "DIRECTORY"),
        "objects.etl/ingest.kind",
    ),
    "object as a number": (_set("objects.etl/ingest", 7), "objects.etl/ingest"),
    "tests as a list": (_set("tests", [1]), "tests"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_a_hand_edited_record_is_refused_naming_the_field(
    case: str, emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    doc = json.loads(emulator.read(RECORD))
    edit, field = BAD_RECORDS[case]
    edit(doc)
    emulator.hand_edit(RECORD, json.dumps(doc).encode())
    start = len(emulator.request_log())
    art = build(tmp_path, V2, "2.0.0")

    with pytest.raises(RecordCorrupt) as info:
        deploy(emulator, fake_clock, art)
    assert f"field '{field}'" in str(info.value) and "fix or delete it" in str(info.value)
    for args in (("deploy", str(art.path), "--env", "test"), ("status", "--env", "test")):
        assert_error(run_cli(cfg, *args, host=emulator.url), 2, "deployment.json", field)
    assert writes(emulator, start) == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"schema_version": 1, "version": ' + b"9" * 100_000 + b"}", "too many digits"),
        (b'{"schema_version": NaN}', "NaN is not a number"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_record_the_json_parser_alone_would_crash_on_is_refused(
    raw: bytes, why: str, emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    emulator.hand_edit(RECORD, raw)
    start = len(emulator.request_log())

    art = build(tmp_path, V2, "2.0.0")
    for args in (("deploy", str(art.path), "--env", "test"), ("status", "--env", "test")):
        assert_error(run_cli(cfg, *args, host=emulator.url), 2, "deployment.json", why)
    assert writes(emulator, start) == []


def test_a_hostile_history_is_one_line_for_the_history_command(
    emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    doc = json.loads(emulator.read(HISTORY))
    doc["deployments"][0]["detail"] = {"nested": [1, 2]}
    emulator.hand_edit(HISTORY, json.dumps(doc).encode())

    result = run_cli(cfg, "history", "--env", "test", host=emulator.url)

    assert_error(result, 2, "history.json", "deployments[0].detail")


def test_a_lock_with_an_impossible_pid_is_unreadable_not_a_crash(
    emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path, workspace_client: Any
) -> None:
    """On this host os.kill(10**30, 0) raises OverflowError: the reader refuses the pid."""
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    lock = Lock("mallory", "2999-01-01T00:00:00Z", socket.gethostname(), 1, "9", "sha256:x")
    doc = {**json.loads(lock.to_json()), "pid": 10**30}
    workspace_client.workspace.upload(
        LOCK, json.dumps(doc).encode(), format=ImportFormat.AUTO, overwrite=True
    )

    with pytest.raises(RecordCorrupt, match="field 'pid'"):
        Lock.from_json(json.dumps(doc).encode(), where=LOCK)
    art = build(tmp_path, V2, "2.0.0")
    result = run_cli(cfg, "deploy", str(art.path), "--env", "test", host=emulator.url)
    assert_error(result, 1, "unreadable lock file")


def test_a_record_round_trips_through_the_bounded_reader(
    emulator: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    raw = emulator.read(RECORD)

    record = Record.from_json(raw, where=RECORD)

    assert record.to_json() == raw


@pytest.mark.parametrize(
    "tests",
    [
        {"tests": [1]},
        {"tests": [{"notebook": "a", "status": "x", "cases": [7]}]},
        {"tests": [{"notebook": "a", "status": "x", "duration_s": "slow"}]},
        {"outcome": None, "tests": "all"},
    ],
)
def test_hand_edited_test_results_in_the_record_are_one_line_not_a_crash(
    tests: dict[str, Any], emulator: Emulator, fake_clock: Any, tmp_path: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    doc = json.loads(emulator.read(RECORD))
    doc["tests"] = {"env": "test", "version": "1.0.0", "digest": doc["digest"], **tests}
    doc["tests"].setdefault("outcome", "passed")
    emulator.hand_edit(RECORD, json.dumps(doc).encode())
    cfg = tmp_path / "tested.yml"
    cfg.write_text(
        CONFIG + "    tests: {notebooks: ['etl/*'], compute: {serverless: true}}\n"
        "  prod:\n    root: /Shared/app/prod\n    requires: test\n"
    )

    for args in (
        ("status", "--env", "test"),
        ("promote", "--from", "test", "--to", "prod", "--yes", "--dry-run"),
    ):
        assert_error(run_cli(cfg, *args, host=emulator.url), 2, "tests in the record")
