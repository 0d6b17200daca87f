"""Bulk planning without a server: which new folders become one directory import each, in
which wave, what stays per object, and the zips they send."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from dbx_promote.bulk import BulkPlan, Wave, build_zip, plan_bulk
from dbx_promote.emulator.directory import read_archive
from dbx_promote.plan import DesiredObject, make_plan
from dbx_promote.remote import RemoteObject

ROOT = "/Shared/app"


def nb(path: str, size: int = 10, language: str = "PYTHON", fmt: str = "SOURCE") -> DesiredObject:
    return DesiredObject(path, "notebook", language, fmt, "0" * 64, size)


def file(path: str, size: int = 10) -> DesiredObject:
    return DesiredObject(path, "file", None, "AUTO", "0" * 64, size)


def folder(rel: str) -> RemoteObject:
    return RemoteObject(f"{ROOT}/{rel}", "DIRECTORY")


def notebook_at(rel: str) -> RemoteObject:
    return RemoteObject(f"{ROOT}/{rel}", "NOTEBOOK", "PYTHON", 1, 1)


def bulk(desired: list[DesiredObject], listing: list[RemoteObject] = (), **kw: int) -> BulkPlan:  # type: ignore[assignment]
    plan = make_plan(desired, listing, None, env="t", root=ROOT, version="1", digest="d")
    return plan_bulk(plan, desired, **kw)


def shape(b: BulkPlan) -> list[tuple[list[str], list[str]]]:
    """Per wave: the folders imported and the folders made with mkdirs."""
    return [([i.folder for i in w.imports], list(w.mkdirs)) for w in b.waves]


CASES = [
    pytest.param(
        [nb("etl/a"), nb("etl/b"), nb("reports/r"), file("lib/helpers.py"), nb("_environment")],
        [],
        [(["etl", "reports"], ["lib"])],
        {"etl/a", "etl/b", "reports/r"},
        [],
        [],
        id="first deploy: one import per top folder, file-only folder made beside them",
    ),
    pytest.param(
        [nb("etl/a"), nb("etl/new/x"), nb("etl/new/deep/y")],
        [folder("etl"), notebook_at("etl/a")],
        [(["etl/new"], [])],
        {"etl/new/x", "etl/new/deep/y"},
        [],
        [],
        id="a new folder inside an existing one; the existing folder stays per object",
    ),
    pytest.param(
        [nb("etl/a"), file("etl/conf.json"), file("etl/data/f.csv")],
        [],
        [(["etl"], [])],
        {"etl/a"},
        ["etl/conf.json", "etl/data/f.csv"],
        ["etl/data"],
        id="files inside a bulk folder stay per object; their own folder is made after",
    ),
    pytest.param(
        [nb("a/b/c/nb")],
        [],
        [(["a"], [])],
        {"a/b/c/nb"},
        [],
        [],
        id="nested new folders are one import of the outermost",
    ),
    pytest.param(
        [file("lib/x.py"), nb("top")],
        [],
        [],
        set(),
        [],
        ["lib"],
        id="no notebook in any new folder: nothing in bulk",
    ),
    pytest.param(
        [nb("etl/a"), nb("etl/b")],
        [folder("etl"), notebook_at("etl/a")],
        [],
        set(),
        [],
        [],
        id="no new folder: nothing in bulk",
    ),
]


@pytest.mark.parametrize(("desired", "listing", "waves", "carried", "per_object", "mkdirs"), CASES)
def test_bulk_plan(desired, listing, waves, carried, per_object, mkdirs) -> None:
    b = bulk(desired, listing)
    assert shape(b) == waves
    assert b.carried == carried
    assert list(b.per_object) == per_object
    assert list(b.mkdirs) == mkdirs


def test_a_folder_over_the_limit_carries_what_fits_and_its_other_subfolders_wait_a_wave() -> None:
    desired = [
        nb("big/own", 50),
        *[nb(f"big/a/n{i}", 100) for i in range(3)],
        *[nb(f"big/b/n{i}", 100) for i in range(3)],
        *[nb(f"big/c/n{i}", 100) for i in range(3)],
    ]
    b = bulk(desired, limit=1500)
    assert shape(b) == [(["big"], []), (["big/b", "big/c"], [])]
    [first] = b.waves[0].imports
    assert set(first.paths) == {"big/own", "big/a/n0", "big/a/n1", "big/a/n2"}
    assert b.carried == {d.path for d in desired}


def test_a_folder_with_nothing_that_fits_is_made_with_mkdirs_and_its_children_follow() -> None:
    desired = [nb(f"big/{sub}/n{i}", 300) for sub in "ab" for i in range(3)]
    b = bulk(desired, limit=1500)
    assert shape(b) == [([], ["big"]), (["big/a", "big/b"], [])]
    assert b.carried == {d.path for d in desired}
    assert b.mkdirs == ()


def test_a_notebook_too_large_for_any_import_stays_per_object() -> None:
    b = bulk([nb("etl/huge", 5000), nb("etl/small", 10)], limit=1500)
    assert shape(b) == [(["etl"], [])]
    assert b.carried == {"etl/small"} and b.per_object == ("etl/huge",)


def test_every_import_is_within_the_limit() -> None:
    desired = [nb(f"f{i % 3}/s{i % 7}/n{i}", 37 * (i % 11) + 5) for i in range(300)]
    limit = 4000
    b = bulk(desired, limit=limit)
    sizes = {d.path: d.size for d in desired}
    for imp in b.imports:
        assert sum(sizes[p] for p in imp.paths) <= limit
    assert b.carried | set(b.per_object) == set(sizes)
    folders = [i.folder for i in b.imports]
    assert len(folders) == len(set(folders))


# --- the zip --------------------------------------------------------------------------

IPYNB = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
CONTENT = {
    "etl/ingest": b"# Databricks notebook source\nprint(1)\n",
    "etl/q": b"SELECT 1\n",  # no header: added, as a single SOURCE import would
    "etl/sub/s": b"// Databricks notebook source\n1\n",
    "etl/sub/stats": b"# Databricks notebook source\n1\n",
    "etl/nb": IPYNB,
}
DESIRED = [
    nb("etl/ingest"),
    nb("etl/q", language="SQL"),
    nb("etl/sub/s", language="SCALA"),
    nb("etl/sub/stats", language="R"),
    nb("etl/nb", fmt="JUPYTER"),
]


def test_the_zip_is_laid_out_as_a_source_export_of_the_folder() -> None:
    b = bulk(DESIRED)
    [imp] = b.imports
    data = build_zip(imp, {d.path: d for d in DESIRED}, CONTENT.__getitem__)
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.namelist() == [
        "etl/",
        "etl/sub/",
        "etl/ingest.py",
        "etl/nb.ipynb",
        "etl/q.sql",
        "etl/sub/s.scala",
        "etl/sub/stats.r",
    ]
    assert zf.read("etl/q.sql") == b"-- Databricks notebook source\nSELECT 1\n"
    assert zf.read("etl/nb.ipynb") == IPYNB
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist() if not i.is_dir())
    again = build_zip(imp, {d.path: d for d in DESIRED}, CONTENT.__getitem__)
    assert again == data


def test_the_emulator_reads_the_zip_back_as_the_planned_notebooks() -> None:
    [imp] = bulk(DESIRED).imports
    data = build_zip(imp, {d.path: d for d in DESIRED}, CONTENT.__getitem__)
    landed = {o.path: (o.object_type, o.language) for o in read_archive(data)}
    assert landed == {
        "sub": ("DIRECTORY", None),
        "ingest": ("NOTEBOOK", "PYTHON"),
        "q": ("NOTEBOOK", "SQL"),
        "sub/s": ("NOTEBOOK", "SCALA"),
        "sub/stats": ("NOTEBOOK", "R"),
        "nb": ("NOTEBOOK", "PYTHON"),
    }


def test_wave_defaults_are_empty() -> None:
    assert Wave() == Wave((), ())
