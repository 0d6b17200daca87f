"""One rule for the characters of a path (issue 13, review item B): a control character
(DEL, C1 such as U+0085) or an invisible one (a bidi override such as U+202E) is refused
wherever a path enters — a build's file names, an artifact's manifest, a folder's record
and lock — with the character named. The rule used to differ: verify and deploy accepted
DEL, the record reader refused it, and the deploy that wrote it left every later command
saying the record's path "leaves the folder".
"""

from __future__ import annotations

import json
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote.artifact import MANIFEST_NAME, Artifact
from dbx_promote.emulator import Emulator
from dbx_promote.errors import RecordCorrupt
from dbx_promote.pathchars import hidden_character_problem
from dbx_promote.record import Lock

from cli_helpers import assert_error, run_cli
from deploy_helpers import ROOT, V1, V2, build, deploy

RECORD = f"{ROOT}/.dbx-promote/deployment.json"
LOCK = f"{ROOT}/.dbx-promote/lock.json"
CONFIG = f"project: app\nsource: src\nenvironments:\n  test:\n    root: {ROOT}\n"
HIDDEN = {"DEL": "\x7f", "C1 next line": "\x85", "bidi override": "\u202e"}


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG)
    return path


def writes(emu: Emulator, since: int) -> list[dict[str, Any]]:
    return [r for r in emu.request_log()[since:] if r["method"] != "GET"]


def with_object_renamed(artifact: Artifact, out: Path, old: str, new: str) -> Path:
    """``artifact`` with notebook ``old`` renamed to ``new`` consistently: its entry, path
    and workspace path, so nothing but the characters of the name is wrong."""
    manifest = artifact.manifest.to_dict()
    for obj in manifest["objects"]:
        if obj["workspace_path"] == old:
            obj["path"] = obj["path"].replace(old, new)
            obj["workspace_path"] = new
    with zipfile.ZipFile(artifact.path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in entries:
            body = json.dumps(manifest).encode() if name == MANIFEST_NAME else body
            zf.writestr(name.replace(old, new), body)
    return out


@pytest.mark.parametrize("text", ["etl/ingest", "données/été", "a b/c-d_e.f"])
def test_ordinary_names_pass_the_rule(text: str) -> None:
    assert hidden_character_problem(text) is None


@pytest.mark.parametrize("char", HIDDEN.values(), ids=list(HIDDEN))
def test_the_rule_names_the_character(char: str) -> None:
    problem = hidden_character_problem(f"etl/in{char}gest")
    assert problem == f"holds a control or invisible character (U+{ord(char):04X})"


@pytest.mark.parametrize("char", HIDDEN.values(), ids=list(HIDDEN))
def test_an_artifact_path_with_a_hidden_character_is_refused_by_verify_and_deploy(
    char: str, emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    bad = with_object_renamed(
        build(tmp_path, V2, "2.0.0"), tmp_path / "bad.zip", "etl/ingest", f"etl/in{char}gest"
    )
    start = len(emulator.request_log())
    reason = f"control or invisible character (U+{ord(char):04X})"

    assert_error(run_cli(cfg, "verify", str(bad), host=None), 2, reason)
    deployed = run_cli(cfg, "deploy", str(bad), "--env", "test", host=emulator.url)

    assert_error(deployed, 2, reason)
    assert writes(emulator, start) == []  # no lock left behind, nothing written
    assert run_cli(cfg, "status", "--env", "test", host=emulator.url).returncode == 0


@pytest.mark.parametrize("char", HIDDEN.values(), ids=list(HIDDEN))
def test_a_record_path_with_a_hidden_character_is_refused_for_what_it_is(
    char: str, emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    doc = json.loads(emulator.read(RECORD))
    doc["objects"][f"etl/in{char}gest"] = doc["objects"].pop("etl/ingest")
    emulator.hand_edit(RECORD, json.dumps(doc).encode())

    line = assert_error(
        run_cli(cfg, "status", "--env", "test", host=emulator.url),
        2,
        "deployment.json",
        f"control or invisible character (U+{ord(char):04X})",
    )
    assert "leaves the folder" not in line


def test_a_lock_path_with_a_bidi_override_is_unreadable_naming_it(
    emulator: Emulator, fake_clock: Any, tmp_path: Path, cfg: Path, workspace_client: Any
) -> None:
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    lock = Lock("mallory", "2999-01-01T00:00:00Z", socket.gethostname(), 1, "9", "sha256:x")
    doc = {**json.loads(lock.to_json()), "new_dirs": ["etl/\u202egpj.exe"]}
    workspace_client.workspace.upload(
        LOCK, json.dumps(doc).encode(), format=ImportFormat.AUTO, overwrite=True
    )

    with pytest.raises(RecordCorrupt, match=r"U\+202E"):
        Lock.from_json(json.dumps(doc).encode(), where=LOCK)
    art = build(tmp_path, V2, "2.0.0")
    result = run_cli(cfg, "deploy", str(art.path), "--env", "test", host=emulator.url)
    assert_error(result, 1, "unreadable lock file")
