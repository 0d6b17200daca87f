"""`rollback`, `status` and `history`: every release is a recorded point you can go back to
(issue 6).

End-to-end cases drive the real CLI in a subprocess against the emulator; setup deploys and
finer checks use the Python API (`dbx_promote.operations`) against the same emulator.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote import operations
from dbx_promote.artifact import open_artifact
from dbx_promote.config import load_config
from dbx_promote.deploy import DeployOptions
from dbx_promote.emulator import Emulator, Fault
from dbx_promote.errors import DeployFailed, RecordCorrupt, ReleaseNotFound
from dbx_promote.record import Record, ReleaseRef

from cli_helpers import HEADER, TOKEN, Built, assert_error, build_releases, run_cli

ROOT = "/Shared/demo/test"
PROD_ROOT = "/Shared/demo/prod"
RECORD = f"{ROOT}/.dbx-promote/deployment.json"
HISTORY = f"{ROOT}/.dbx-promote/history.json"

# v2 changes one notebook, adds one and removes one; v3 changes another.
RELEASES: dict[str, dict[str, str]] = {
    "1.0.0": {
        "ingest/load.py": HEADER + 'print("load v1")\n',
        "ingest/old.py": HEADER + 'print("old, removed in v2")\n',
        "clean.py": HEADER + 'print("clean v1")\n',
    },
    "1.1.0": {
        "ingest/load.py": HEADER + 'print("load v2")\n',
        "clean.py": HEADER + 'print("clean v1")\n',
        "report.sql": "-- Databricks notebook source\nSELECT 1\n",
    },
    "1.2.0": {
        "ingest/load.py": HEADER + 'print("load v2")\n',
        "clean.py": HEADER + 'print("clean v3")\n',
        "report.sql": "-- Databricks notebook source\nSELECT 1\n",
    },
}

CONFIG = """\
project: demo
source: notebooks
environments:
  test:
    root: /Shared/demo/test
    keep_releases: {keep}
  prod:
    root: /Shared/demo/prod
    requires: test
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """v1, v2, v3 built once with `dbx-promote build` (outside git, so --version)."""
    return build_releases(tmp_path_factory.mktemp("releases"), RELEASES, CONFIG.format(keep=5))


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "dbx-promote.yml"
    path.write_text(CONFIG.format(keep=5))
    return path


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Emulator:
    """Credentials for the in-process Python API: the emulator via environment variables."""
    monkeypatch.setenv("DATABRICKS_HOST", emulator.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    return emulator


def api_deploy(cfg: Path, artifact: Built, env: str = "test", **options: Any) -> None:
    """Deploy through the Python API (fast setup; the CLI is tested elsewhere)."""
    operations.deploy(load_config(cfg), env, open_artifact(artifact.path), DeployOptions(**options))


def contents(emu: Emulator, root: str = ROOT) -> dict[str, tuple[str, str | None, bytes | None]]:
    """Everything under ``root`` but the state folder: path -> (type, language, bytes)."""
    out = {}
    for path, meta in emu.tree(root).items():
        if "/.dbx-promote" in path:
            continue
        data = None if meta["object_type"] == "DIRECTORY" else emu.read(path)
        out[path] = (meta["object_type"], meta.get("language"), data)
    return out


def snapshot(emu: Emulator, root: str = ROOT) -> dict[str, Any]:
    """Every object under ``root`` with its metadata and bytes, the state folder included."""
    return {
        path: (meta, None if meta["object_type"] == "DIRECTORY" else emu.read(path))
        for path, meta in sorted(emu.tree(root).items())
    }


def cli_json(cfg: Path, emu: Emulator, *args: str) -> Any:
    result = run_cli(cfg, *args, "--output", "json", host=emu.url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def upload(client: WorkspaceClient, path: str, data: bytes) -> None:
    client.workspace.upload(path, data, format=ImportFormat.AUTO, overwrite=True)


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# --- rollback -------------------------------------------------------------------------------


def test_rollback_restores_the_previous_release_byte_for_byte(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    v1 = contents(api)
    api_deploy(cfg, built["1.1.0"])
    assert contents(api) != v1
    result = run_cli(cfg, "rollback", "--env", "test", host=api.url)
    assert result.returncode == 0, result.stderr
    assert "rolled test back to 1.0.0 and verified" in result.stdout
    assert contents(api) == v1  # same paths, types, languages and bytes; ingest/old is back
    st = cli_json(cfg, api, "status", "--env", "test")
    assert (st["version"], st["digest"], st["kind"]) == ("1.0.0", built["1.0.0"].digest, "rollback")
    assert st["verified"] is True
    assert st["drift"] == {"edited": [], "missing": [], "unmanaged": []}


def test_rollback_twice_goes_back_and_forth(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    """The previous release is the newest stored one that is not running now."""
    api_deploy(cfg, built["1.0.0"])
    api_deploy(cfg, built["1.1.0"])
    v2 = contents(api)
    assert run_cli(cfg, "rollback", "--env", "test", host=api.url).returncode == 0
    assert run_cli(cfg, "rollback", "--env", "test", host=api.url).returncode == 0
    assert contents(api) == v2


@pytest.mark.parametrize("how", ["version", "v-version", "digest", "digest-prefix"])
def test_rollback_to_a_named_release(
    cfg: Path, api: Emulator, built: dict[str, Built], how: str
) -> None:
    api_deploy(cfg, built["1.0.0"])
    v1 = contents(api)
    api_deploy(cfg, built["1.1.0"])
    api_deploy(cfg, built["1.2.0"])
    digest = built["1.0.0"].digest
    to = {
        "version": "1.0.0",
        "v-version": "v1.0.0",
        "digest": digest,
        "digest-prefix": digest.split(":")[1][:12],
    }[how]
    out = cli_json(cfg, api, "rollback", "--env", "test", "--to", to)
    assert (out["version"], out["digest"], out["previous_version"]) == ("1.0.0", digest, "1.2.0")
    assert contents(api) == v1


def test_rollback_dry_run_writes_nothing(cfg: Path, api: Emulator, built: dict[str, Built]) -> None:
    api_deploy(cfg, built["1.0.0"])
    api_deploy(cfg, built["1.1.0"])
    before = snapshot(api)
    out = cli_json(cfg, api, "rollback", "--env", "test", "--dry-run")
    assert out["dry_run"] is True and out["version"] == "1.0.0"
    assert snapshot(api) == before


def test_old_releases_are_pruned_to_keep_releases(
    tmp_path: Path, api: Emulator, built: dict[str, Built]
) -> None:
    cfg = tmp_path / "keep2.yml"
    cfg.write_text(CONFIG.format(keep=2))
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        api_deploy(cfg, built[version])
    zips = sorted(p for p in api.tree(f"{ROOT}/.dbx-promote/releases") if p.endswith(".zip"))
    assert len(zips) == 2
    assert not any("1.0.0" in z for z in zips)
    assert cli_json(cfg, api, "status", "--env", "test")["releases"] == ["1.2.0", "1.1.0"]


def test_rollback_to_a_pruned_release_is_refused_cleanly(
    tmp_path: Path, api: Emulator, built: dict[str, Built]
) -> None:
    cfg = tmp_path / "keep2.yml"
    cfg.write_text(CONFIG.format(keep=2))
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        api_deploy(cfg, built[version])
    before = snapshot(api)
    result = run_cli(cfg, "rollback", "--env", "test", "--to", "1.0.0", host=api.url)
    assert_error(result, 2, "'1.0.0'", "1.2.0, 1.1.0", "keep_releases")
    assert snapshot(api) == before
    assert api.tree(f"{ROOT}/.dbx-promote/lock.json") == {}


def test_rollback_of_a_never_deployed_environment_is_refused(cfg: Path, emulator: Emulator) -> None:
    result = run_cli(cfg, "rollback", "--env", "test", host=emulator.url)
    assert_error(result, 2, "'test'", "no stored releases")
    assert emulator.tree(ROOT) == {}


def test_rollback_with_only_the_current_release_stored_is_refused(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    before = snapshot(api)
    result = run_cli(cfg, "rollback", "--env", "test", host=api.url)
    assert_error(result, 2, "no earlier release", "1.0.0")
    assert snapshot(api) == before


def test_rollback_to_a_release_whose_zip_was_deleted_says_so(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    api_deploy(cfg, built["1.1.0"])
    (v1_zip,) = [
        p for p in api.tree(f"{ROOT}/.dbx-promote/releases") if "1.0.0" in p and p.endswith(".zip")
    ]
    workspace_client.workspace.delete(v1_zip)
    result = run_cli(cfg, "rollback", "--env", "test", host=api.url)
    assert_error(result, 2, "1.0.0", "gone from the release store")


def test_rollback_refuses_a_stored_release_that_was_altered(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    api_deploy(cfg, built["1.1.0"])
    (v1_zip,) = [
        p for p in api.tree(f"{ROOT}/.dbx-promote/releases") if "1.0.0" in p and p.endswith(".zip")
    ]
    upload(workspace_client, v1_zip, built["1.2.0"].path.read_bytes())
    before = contents(api)
    result = run_cli(cfg, "rollback", "--env", "test", host=api.url)
    assert_error(result, 2, "altered")
    assert contents(api) == before


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        (None, "1.1.0"),
        ("1.2.0", "1.2.0"),
        ("v1.0.0", "1.0.0"),
        ("sha256:" + "a" * 64, "1.0.0"),
        ("aaaaaaaa", "1.0.0"),
        ("bbbbbbb", "1.1.0"),
    ],
)
def test_pick_release_chooses_the_previous_or_the_named_one(to: str | None, expected: str) -> None:
    record = _record(
        current="sha256:" + "c" * 64,
        releases=[("1.2.0", "c"), ("1.1.0", "b"), ("1.0.0", "a")],
    )
    assert operations.pick_release(record, to, "test").version == expected


@pytest.mark.parametrize("to", ["0.9.0", "sha256:" + "f" * 64, "ffff"])
def test_pick_release_refuses_what_is_not_stored(to: str) -> None:
    record = _record(current="sha256:" + "c" * 64, releases=[("1.2.0", "c"), ("1.1.0", "b")])
    with pytest.raises(ReleaseNotFound, match=r"kept: 1\.2\.0, 1\.1\.0"):
        operations.pick_release(record, to, "test")


def _record(current: str, releases: list[tuple[str, str]]) -> Record:
    return Record(
        project="demo",
        env="test",
        version="1.2.0",
        digest=current,
        commit=None,
        deployed_at="2026-01-01T00:00:00Z",
        deployed_by="someone",
        kind="deploy",
        verified=True,
        objects={},
        releases=tuple(
            ReleaseRef(v, "sha256:" + c * 64, f".dbx-promote/releases/demo-{v}.zip")
            for v, c in releases
        ),
    )


# --- status ---------------------------------------------------------------------------------


def test_status_reports_what_was_deployed_by_whom_and_when(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    result = run_cli(cfg, "deploy", str(built["1.0.0"].path), "--env", "test", host=emulator.url)
    assert result.returncode == 0, result.stderr
    st = cli_json(cfg, emulator, "status", "--env", "test")
    assert st["env"] == "test" and st["root"] == ROOT
    assert st["deployed"] is True
    assert (st["version"], st["digest"]) == ("1.0.0", built["1.0.0"].digest)
    assert st["commit"] is None  # built outside git
    assert ISO.match(st["deployed_at"])
    assert st["deployed_by"] == emulator.user
    assert (st["kind"], st["verified"], st["skip_requires"]) == ("deploy", True, False)
    assert st["pipeline"] is None
    assert st["releases"] == ["1.0.0"]
    assert st["lock"] is None
    assert st["drift"] == {"edited": [], "missing": [], "unmanaged": []}
    assert st["error"] is None

    text = run_cli(cfg, "status", "--env", "test", host=emulator.url)
    assert text.returncode == 0, text.stderr
    for line in ("version  1.0.0", f"digest   {built['1.0.0'].digest}", "verified yes"):
        assert line in text.stdout
    assert f"by {emulator.user} (deploy)" in text.stdout
    assert "lock     free" in text.stdout and "drift    none" in text.stdout


def test_status_of_a_never_deployed_environment(cfg: Path, emulator: Emulator) -> None:
    st = cli_json(cfg, emulator, "status", "--env", "prod")
    assert st["deployed"] is False and st["version"] is None and st["releases"] == []
    text = run_cli(cfg, "status", "--env", "prod", host=emulator.url)
    assert "nothing deployed yet" in text.stdout


def test_status_shows_live_drift_edited_missing_and_unmanaged(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    api.hand_edit(f"{ROOT}/clean")
    workspace_client.workspace.delete(f"{ROOT}/ingest/old")
    upload(workspace_client, f"{ROOT}/scratch.py", HEADER.encode() + b"print(1)\n")
    st = cli_json(cfg, api, "status", "--env", "test")
    assert st["drift"] == {"edited": ["clean"], "missing": ["ingest/old"], "unmanaged": ["scratch"]}
    text = run_cli(cfg, "status", "--env", "test", host=api.url).stdout
    assert re.search(r"edited\s+clean", text)
    assert re.search(r"missing\s+ingest/old", text)
    assert "scratch" in text


def test_status_text_separates_the_unmanaged_label_from_the_path(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    upload(workspace_client, f"{ROOT}/scratch.py", HEADER.encode() + b"print(1)\n")
    text = run_cli(cfg, "status", "--env", "test", host=api.url).stdout
    assert re.search(r"unmanaged\s+scratch", text), text


def test_status_shows_who_holds_the_lock_and_since_when(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    lock = {
        "holder": "ci@example.com",
        "started_at": "2026-01-02T03:04:05Z",
        "host": "agent-7",
        "pid": 42,
        "version": "1.1.0",
        "digest": built["1.1.0"].digest,
    }
    upload(workspace_client, f"{ROOT}/.dbx-promote/lock.json", json.dumps(lock).encode())
    st = cli_json(cfg, api, "status", "--env", "test")
    assert st["lock"] == {
        "holder": "ci@example.com",
        "since": "2026-01-02T03:04:05Z",
        "host": "agent-7",
    }
    text = run_cli(cfg, "status", "--env", "test", host=api.url).stdout
    assert "held by ci@example.com since 2026-01-02T03:04:05Z" in text


def test_status_without_env_compares_every_environment(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    data = cli_json(cfg, api, "status")
    envs = {e["env"]: e for e in data["environments"]}
    assert envs.keys() == {"test", "prod"}
    assert envs["test"]["version"] == "1.0.0" and envs["prod"]["deployed"] is False
    operations.promote(load_config(cfg), "test", "prod", DeployOptions())
    text = run_cli(cfg, "status", host=api.url).stdout
    assert "all environments run the same artifact" in text
    api_deploy(cfg, built["1.1.0"])
    text = run_cli(cfg, "status", host=api.url).stdout
    assert "environments run different artifacts" in text
    envs = {e["env"]: e for e in cli_json(cfg, api, "status")["environments"]}
    assert envs["test"]["deployed_at"] >= envs["prod"]["deployed_at"]
    assert (envs["test"]["version"], envs["prod"]["version"]) == ("1.1.0", "1.0.0")


def test_status_and_history_carry_the_azure_pipelines_run(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    pipeline = {
        "TF_BUILD": "True",
        "SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/",
        "SYSTEM_TEAMPROJECT": "data",
        "BUILD_BUILDID": "1234",
        "BUILD_BUILDNUMBER": "20260101.3",
        "BUILD_SOURCEBRANCH": "refs/heads/main",
        "BUILD_SOURCEVERSION": "abc123",
        "BUILD_REQUESTEDFOR": "Jane Doe",
    }
    result = run_cli(
        cfg, "deploy", str(built["1.0.0"].path), "--env", "test", host=emulator.url,
        extra_env=pipeline,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_url = "https://dev.azure.com/contoso/data/_build/results?buildId=1234"
    st = cli_json(cfg, emulator, "status", "--env", "test")
    assert st["pipeline"]["run_url"] == run_url
    assert st["pipeline"]["build_number"] == "20260101.3"
    assert st["pipeline"]["source_branch"] == "refs/heads/main"
    assert st["pipeline"]["source_version"] == "abc123"
    assert f"via {run_url}" in run_cli(cfg, "status", "--env", "test", host=emulator.url).stdout
    (entry,) = cli_json(cfg, emulator, "history", "--env", "test")["deployments"]
    assert entry["pipeline"]["run_url"] == run_url


# --- history --------------------------------------------------------------------------------


def test_history_lists_deploy_promote_and_rollback_newest_first(
    cfg: Path, emulator: Emulator, built: dict[str, Built]
) -> None:
    def ok(*args: str) -> None:
        result = run_cli(cfg, *args, host=emulator.url)
        assert result.returncode == 0, result.stderr

    ok("deploy", str(built["1.0.0"].path), "--env", "test")
    ok("promote", "--from", "test", "--to", "prod", "--yes")
    ok("deploy", str(built["1.1.0"].path), "--env", "test")
    ok("promote", "--from", "test", "--to", "prod", "--yes")
    ok("rollback", "--env", "prod")

    prod = cli_json(cfg, emulator, "history", "--env", "prod")
    assert prod["env"] == "prod"
    rows = [(e["kind"], e["version"], e["digest"], e["outcome"]) for e in prod["deployments"]]
    d1, d2 = built["1.0.0"].digest, built["1.1.0"].digest
    assert rows == [
        ("rollback", "1.0.0", d1, "succeeded"),
        ("promote", "1.1.0", d2, "succeeded"),
        ("promote", "1.0.0", d1, "succeeded"),
    ]
    for e in prod["deployments"]:
        assert e["by"] == emulator.user and ISO.match(e["at"])
    ats = [e["at"] for e in prod["deployments"]]
    assert ats == sorted(ats, reverse=True)
    test = cli_json(cfg, emulator, "history", "--env", "test")["deployments"]
    assert [(e["kind"], e["version"]) for e in test] == [("deploy", "1.1.0"), ("deploy", "1.0.0")]

    text = run_cli(cfg, "history", "--env", "prod", host=emulator.url)
    assert text.returncode == 0
    assert "history of prod" in text.stdout
    assert text.stdout.index("rollback") < text.stdout.index("promote")

    st = cli_json(cfg, emulator, "status", "--env", "prod")
    assert (st["version"], st["kind"], st["releases"]) == ("1.0.0", "rollback", ["1.0.0", "1.1.0"])


def test_history_of_a_never_deployed_environment_is_empty(cfg: Path, emulator: Emulator) -> None:
    assert cli_json(cfg, emulator, "history", "--env", "test") == {
        "env": "test",
        "deployments": [],
    }


def test_a_failed_deploy_that_was_restored_shows_in_status_and_history(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    v1 = contents(api)
    # A 400 is not retried: the import of ingest/load fails once and the deploy fails.
    api.add_fault(
        Fault(endpoint="import", path_glob="*/ingest/load", status=400, error_code="INVALID_STATE")
    )
    result = run_cli(
        cfg, "deploy", str(built["1.1.0"].path), "--env", "test", "--output", "json", host=api.url
    )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1]
    assert "restored the previous release 1.0.0" in errors[0]
    assert "Traceback" not in result.stderr
    assert contents(api) == v1

    st = cli_json(cfg, api, "status", "--env", "test")
    assert (st["version"], st["digest"]) == ("1.0.0", built["1.0.0"].digest)
    assert (st["kind"], st["verified"]) == ("restore", True)
    assert st["drift"] == {"edited": [], "missing": [], "unmanaged": []}
    assert st["lock"] is None

    history = cli_json(cfg, api, "history", "--env", "test")["deployments"]
    assert [(e["kind"], e["version"], e["outcome"]) for e in history] == [
        ("restore", "1.0.0", "succeeded"),
        ("deploy", "1.1.0", "failed"),
        ("deploy", "1.0.0", "succeeded"),
    ]
    assert "Fault injected" in history[1]["detail"]
    assert "1.1.0" in history[0]["detail"]

    # The failed release is gone from the folder; the next clean deploy converges to it.
    api.clear_faults()
    api_deploy(cfg, built["1.1.0"])
    assert cli_json(cfg, api, "status", "--env", "test")["version"] == "1.1.0"


def test_a_failed_first_deploy_leaves_nothing_deployed_and_records_the_failure(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    # Refuses the new folder's directory import and then the single import it falls back to.
    api.add_fault(
        Fault(
            endpoint="import",
            path_glob="*/ingest*",
            status=400,
            error_code="INVALID_STATE",
            times=-1,
        )
    )
    with pytest.raises(DeployFailed, match="no previous release"):
        api_deploy(cfg, built["1.0.0"])
    assert {p for p, v in contents(api).items() if v[0] != "DIRECTORY"} == set()
    st = operations.status(load_config(cfg), "test")
    assert st.record is None and st.missing == [] and st.unmanaged == []
    (entry,) = operations.history(load_config(cfg), "test")
    assert (entry.kind, entry.version, entry.outcome) == ("deploy", "1.0.0", "failed")


def test_history_lists_the_restore_above_the_failed_deploy_it_followed(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    api.add_fault(
        Fault(endpoint="import", path_glob="*/ingest/load", status=400, error_code="INVALID_STATE")
    )
    with pytest.raises(DeployFailed):
        api_deploy(cfg, built["1.1.0"])
    history = operations.history(load_config(cfg), "test")
    assert [(e.kind, e.outcome) for e in history] == [
        ("restore", "succeeded"),
        ("deploy", "failed"),
        ("deploy", "succeeded"),
    ]
    # What `history` shows on top is what `status` says runs now.
    assert operations.status(load_config(cfg), "test").to_dict()["kind"] == history[0].kind


def test_a_failed_deploy_leaves_no_orphan_zip_in_the_release_store(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    api.add_fault(
        Fault(endpoint="import", path_glob="*/ingest/load", status=400, error_code="INVALID_STATE")
    )
    with pytest.raises(DeployFailed):
        api_deploy(cfg, built["1.1.0"])
    stored = sorted(
        p.rsplit("/", 1)[1] for p in api.tree(f"{ROOT}/.dbx-promote/releases") if p.endswith(".zip")
    )
    record = json.loads(api.read(RECORD))
    assert stored == sorted(r["file"].rsplit("/", 1)[1] for r in record["releases"])


def test_history_text_shows_full_timestamps_and_users_at_80_columns(
    cfg: Path, api: Emulator, built: dict[str, Built]
) -> None:
    api_deploy(cfg, built["1.0.0"])
    (entry,) = operations.history(load_config(cfg), "test")
    result = run_cli(cfg, "history", "--env", "test", host=api.url, extra_env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert entry.at in result.stdout, result.stdout
    assert entry.by in result.stdout, result.stdout


# --- corrupt state in the workspace -------------------------------------------------------


@pytest.mark.parametrize(
    ("garbage", "why"),
    [
        (b"{", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"version": "1.0.0"}', "field 'objects' is missing"),
        (b'{"schema_version": 99}', "newer dbx-promote"),
    ],
)
def test_a_corrupt_record_is_one_clear_line_for_every_command(
    cfg: Path,
    api: Emulator,
    built: dict[str, Built],
    workspace_client: WorkspaceClient,
    garbage: bytes,
    why: str,
) -> None:
    api_deploy(cfg, built["1.0.0"])
    api_deploy(cfg, built["1.1.0"])
    upload(workspace_client, RECORD, garbage)
    before = snapshot(api)
    for args in (
        ("status", "--env", "test"),
        ("rollback", "--env", "test"),
        ("deploy", str(built["1.2.0"].path), "--env", "test", "--output", "json"),
        ("promote", "--from", "test", "--to", "prod", "--yes"),
    ):
        result = run_cli(cfg, *args, host=api.url)
        assert_error(result, 2, "deployment.json", why)
    assert snapshot(api) == before


def test_a_corrupt_record_message_names_the_way_out_and_the_way_out_works(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    upload(workspace_client, RECORD, b"{")
    line = assert_error(run_cli(cfg, "status", "--env", "test", host=api.url), 2, RECORD)
    assert "fix or delete it" in line
    # `status` of all environments reports the broken one and carries on.
    data = cli_json(cfg, api, "status")
    envs = {e["env"]: e for e in data["environments"]}
    assert "corrupt" in envs["test"]["error"] and envs["prod"]["error"] is None
    # The way out: delete the record; the next deploy adopts the folder and records it.
    workspace_client.workspace.delete(RECORD)
    result = run_cli(cfg, "deploy", str(built["1.1.0"].path), "--env", "test", host=api.url)
    assert result.returncode == 0, result.stderr
    st = cli_json(cfg, api, "status", "--env", "test")
    assert st["version"] == "1.1.0" and st["verified"] is True
    # As the message says, what the lost record owned is now unrecorded: the notebook that
    # v1.1.0 dropped is left alone and reported, never deleted.
    assert st["drift"] == {"edited": [], "missing": [], "unmanaged": ["ingest/old"]}


def test_a_corrupt_history_file_is_one_clear_line(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    upload(workspace_client, HISTORY, b"{")
    line = assert_error(
        run_cli(cfg, "history", "--env", "test", host=api.url), 2, "history.json", "corrupt"
    )
    assert "fix or delete it" in line
    upload(workspace_client, HISTORY, b'{"deployments": [{"version": 1}]}')
    assert_error(run_cli(cfg, "history", "--env", "test", host=api.url), 2, "history.json")
    # Status does not need the history.
    assert cli_json(cfg, api, "status", "--env", "test")["version"] == "1.0.0"


def test_a_deploy_over_a_corrupt_history_warns_and_starts_a_new_one(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    upload(workspace_client, HISTORY, b"{")
    result = run_cli(cfg, "deploy", str(built["1.1.0"].path), "--env", "test", host=api.url)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "history.json" in result.stderr
    entries = operations.history(load_config(cfg), "test")
    assert [(e.kind, e.version) for e in entries] == [("deploy", "1.1.0")]


def test_the_python_api_raises_record_corrupt(
    cfg: Path, api: Emulator, built: dict[str, Built], workspace_client: WorkspaceClient
) -> None:
    api_deploy(cfg, built["1.0.0"])
    upload(workspace_client, RECORD, b"\xff\xfe")
    with pytest.raises(RecordCorrupt, match="not valid JSON"):
        operations.status(load_config(cfg), "test")


@pytest.mark.parametrize("to", ["", "b", "bbb"])
def test_pick_release_refuses_a_prefix_too_short_to_mean_one_release(to: str) -> None:
    record = _record(current="sha256:" + "c" * 64, releases=[("1.2.0", "c"), ("1.1.0", "b")])
    with pytest.raises(ReleaseNotFound):
        operations.pick_release(record, to, "test")
