"""Bulk creation in a real deploy: new folders in one directory import each, verified,
repaired, refused, undone — the real SDK against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from databricks.sdk.service.workspace import ExportFormat

from dbx_promote.deploy import DeployOptions, target_from_artifact
from dbx_promote.emulator import Fault
from dbx_promote.errors import DeployFailed

from deploy_helpers import ROOT, V1, build, deploy, deployer, environment, managed_state

IPYNB = (Path(__file__).parent / "scenarios" / "discovery" / "with_outputs.ipynb").read_text()
MIXED = {
    "etl/ingest.py": "# Databricks notebook source\nprint('ingest')\n",
    "etl/clean.sql": "-- Databricks notebook source\nSELECT 1\n",
    "etl/deep/er/job.scala": "// Databricks notebook source\nprintln(1)\n",
    "etl/stats.r": "# Databricks notebook source\nsummary(1)\n",
    "etl/explore.ipynb": IPYNB,
    "etl/conf.json": '{"a": 1}\n',
    "etl/data/seed.csv": "a,b\n1,2\n",
    "reports/summary.py": "# Databricks notebook source\nprint('summary')\n",
    "lib/helpers.py": "def helper():\n    return 1\n",
    "top.py": "# Databricks notebook source\nprint('top')\n",
}


def imports_of(emulator, under: str = ROOT) -> list[str]:
    """Paths of the import requests below ``under``, our state folder left out."""
    return [
        r["path"]
        for r in emulator.request_log()
        if r["endpoint"] == "import"
        and r["status"] == 200
        and r["path"].startswith(under + "/")
        and "/.dbx-promote/" not in r["path"]
    ]


def landed(emulator, root: str) -> dict[str, tuple[object, ...]]:
    """Every object under ``root``: type, language and stored content hash."""
    return {
        p[len(root) :]: (i["object_type"], i["language"], i["sha256"])
        for p, i in emulator.tree(root).items()
        if "/.dbx-promote" not in p
    }


def test_a_bulk_created_folder_lands_exactly_as_single_imports_would(
    emulator, fake_clock, tmp_path, workspace_client
):
    art = build(tmp_path, MIXED, "1.0.0")
    bulk_root, single_root = "/Shared/bulk", "/Shared/single"
    deploy(emulator, fake_clock, art, env=environment(bulk_root))
    bulk_imports = imports_of(emulator, bulk_root)
    deploy(emulator, fake_clock, art, DeployOptions(no_bulk=True), env=environment(single_root))

    assert landed(emulator, bulk_root) == landed(emulator, single_root)
    for root in (bulk_root, single_root):
        with workspace_client.workspace.download(
            f"{root}/etl/explore", format=ExportFormat.JUPYTER
        ) as f:
            assert json.loads(f.read())["cells"]
    # etl and reports in one request each; files and the root notebooks one by one.
    singles = ["etl/conf.json", "etl/data/seed.csv", "lib/helpers.py", "top", "_environment"]
    assert sorted(bulk_imports) == sorted(f"{bulk_root}/{p}" for p in ["etl", "reports", *singles])


def test_request_counts_of_a_first_deploy_in_bulk(emulator, fake_clock, tmp_path):
    many = {
        f"area_{i % 4}/nb_{i:03}.py": f"# Databricks notebook source\n{i}\n" for i in range(120)
    }
    result = deploy(emulator, fake_clock, build(tmp_path, many, "1.0.0"))

    assert result.verified is True and result.bulk.imports == 4
    counters = emulator.counters()["by_endpoint"]
    # 4 folders, _environment, the lock, the release, the record and the history.
    assert counters["import"] == 9
    assert len(managed_state(emulator)) == 121


def test_a_new_folder_in_a_release_is_one_import_and_the_rest_per_object(
    emulator, fake_clock, tmp_path
):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    v2 = {**V1, "etl/ingest.py": V1["etl/ingest.py"] + "print(2)\n"}
    v2 |= {f"fresh/sub/n{i}.py": f"# Databricks notebook source\n{i}\n" for i in range(5)}
    start = len(emulator.request_log())

    result = deploy(emulator, fake_clock, build(tmp_path, v2, "2.0.0"))

    assert result.bulk.imports == 1
    paths = [
        r["path"][len(ROOT) + 1 :]
        for r in emulator.request_log()[start:]
        if r["endpoint"] == "import" and "/.dbx-promote/" not in r["path"]
    ]
    assert sorted(paths) == ["etl/ingest", "fresh"]


def test_a_bulk_import_that_lands_one_notebook_short_is_repaired_before_commit(
    emulator, fake_clock, tmp_path
):
    emulator.set_directory_import("drop-one")
    art = build(tmp_path, MIXED, "1.0.0")

    result = deploy(emulator, fake_clock, art)

    assert result.verified is True
    # Each folder's import left out its last notebook; both were imported again.
    assert result.bulk.repaired == ("etl/stats", "reports/summary")
    emulator.set_directory_import("accept")
    deploy(emulator, fake_clock, art, DeployOptions(no_bulk=True), env=environment("/Shared/ref"))
    assert landed(emulator, ROOT) == landed(emulator, "/Shared/ref")


def test_a_workspace_that_refuses_directory_import_gets_the_same_deploy_per_object(
    emulator, fake_clock, tmp_path
):
    emulator.set_directory_import("refuse")
    art = build(tmp_path, MIXED, "1.0.0")

    result = deploy(emulator, fake_clock, art)

    assert result.verified is True and result.bulk.refused and result.bulk.imports == 0
    refused = [r for r in emulator.request_log() if r["status"] == 400]
    assert 1 <= len(refused) <= 2  # the first wave's folders, sent together
    d = deployer(emulator, fake_clock)
    assert d.read_record().bulk_refused is True

    # The next deploy with a new folder does not try again.
    emulator.set_directory_import("accept")
    start = len(emulator.request_log())
    v2 = {**MIXED, "fresh/n.py": "# Databricks notebook source\n1\n"}
    result = deploy(emulator, fake_clock, build(tmp_path, v2, "2.0.0"))
    assert result.bulk.imports == 0
    assert f"{ROOT}/fresh" not in [
        r["path"] for r in emulator.request_log()[start:] if r["endpoint"] == "import"
    ]
    assert deployer(emulator, fake_clock).read_record().bulk_refused is True


def test_no_bulk_imports_every_object_one_by_one(emulator, fake_clock, tmp_path):
    result = deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"), DeployOptions(no_bulk=True))

    assert result.bulk.imports == 0
    assert sorted(p[len(ROOT) + 1 :] for p in imports_of(emulator)) == [
        "_environment",
        "etl/clean",
        "etl/ingest",
        "lib/helpers.py",
        "reports/summary",
    ]


def test_a_failure_after_a_bulk_import_landed_removes_the_folder_in_one_delete(
    emulator, fake_clock, tmp_path
):
    emulator.add_fault(
        Fault(
            endpoint="import", path_glob="*/deployment.json", status=400, error_code="INVALID_STATE"
        )
    )
    with pytest.raises(DeployFailed, match="no previous release"):
        deploy(emulator, fake_clock, build(tmp_path, MIXED, "1.0.0"))

    assert managed_state(emulator) == {}
    assert not [p for p in emulator.tree(ROOT) if p.startswith(f"{ROOT}/etl")]
    recursive = [
        r
        for r in emulator.request_log()
        if r["endpoint"] == "delete" and r["path"] == f"{ROOT}/etl"
    ]
    assert len(recursive) == 1


def test_a_failed_bulk_deploy_over_a_release_goes_back_to_it(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    v1_state = managed_state(emulator)
    v2 = {**V1, **{f"fresh/n{i}.py": f"# Databricks notebook source\n{i}\n" for i in range(3)}}
    emulator.add_fault(
        Fault(endpoint="import", path_glob="*/_environment", status=400, error_code="INVALID_STATE")
    )
    d = deployer(emulator, fake_clock)
    target = target_from_artifact(build(tmp_path, v2, "2.0.0"), d.env, d.user)
    # _environment is unchanged between the releases, so fail the record instead.
    emulator.clear_faults()
    emulator.add_fault(
        Fault(
            endpoint="import", path_glob="*/deployment.json", status=400, error_code="INVALID_STATE"
        )
    )
    with pytest.raises(DeployFailed, match=r"restored the previous release 1\.0\.0"):
        d.deploy(target)

    assert managed_state(emulator) == v1_state
    assert f"{ROOT}/fresh" not in emulator.tree(ROOT)
