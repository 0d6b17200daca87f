"""Smoke test of the benchmark harness (`benchmarks/run.py --quick`).

Runs every scenario on a tiny corpus without the legacy CLI and without latency or a
tight rate limit, into a temporary folder: the harness works end to end and its report
renders. No timing is asserted here (issue 8: performance is measured, never asserted).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_corpus_is_deterministic_and_changes_exactly_n(tmp_path: Path) -> None:
    corpus = _load("corpus")
    a, b = tmp_path / "a", tmp_path / "b"
    assert corpus.make_corpus(a, 30, folders=5) == corpus.make_corpus(b, 30, folders=5)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert len(files) == 30
    assert {f.split("/")[0] for f in files} == {f"area_{i:02d}" for i in range(5)}
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    changed = corpus.change_notebooks(a, tmp_path / "c", 7, tag="c7")
    assert len(set(changed)) == 7
    differ = [f for f in files if (a / f).read_bytes() != (tmp_path / "c" / f).read_bytes()]
    assert sorted(differ) == sorted(changed)


def test_busy_seconds_merges_overlapping_requests() -> None:
    run = _load("run")
    log = [{"ts": 1.0}, {"ts": 1.05}, {"ts": 2.0}]
    assert run.busy_seconds(log, 0.1) == pytest.approx(0.25)


def test_quick_run_writes_a_report_to_the_given_path(tmp_path: Path) -> None:
    run = _load("run")
    results_md = BENCH / "RESULTS.md"
    before = results_md.read_bytes() if results_md.exists() else None
    out = tmp_path / "RESULTS.md"
    code = run.main(
        [
            "--quick",
            "--no-legacy",
            "--in-process",
            "--latency-ms",
            "0",
            "--rate-limit",
            "1000",
            "--out",
            str(out),
            "--workdir",
            str(tmp_path / "work"),
        ]
    )
    assert code == 0
    text = out.read_text()
    headings = ("## Goals of issue 15", "## Bulk import and round trips", "## Goals of issue 8")
    for heading in (*headings, "## 1-3.", "## 4. Promote", "## 5. Build", "## 6. Scaling"):
        assert heading in text
    raw = json.loads((tmp_path / "work" / "results.json").read_text())
    ours = raw["ours"]
    assert ours["first"]["create"] >= raw["corpus"]["notebooks"]  # + _environment
    assert ours["first"]["bulk_imports"] == raw["corpus"]["folders"]  # one per folder
    assert ours["first_no_bulk"]["imports_ok"] == raw["corpus"]["notebooks"]
    assert ours["new_folder"]["bulk_imports"] == 1
    assert ours["changed_1"]["round_trips"] >= 5
    assert {p["phase"] for p in ours["changed_1"]["phases"]} >= {"plan", "lock", "commit"}
    assert ours["changed_1"]["update"] == 1 and ours["changed_3"]["update"] == 3
    assert ours["unchanged"]["imports_ok"] == 0
    assert raw["flows"]["promote_first"]["create"] >= raw["corpus"]["notebooks"]
    assert raw["flows"]["rollback"]["update"] > 0
    # The committed results are never touched by the smoke run.
    assert (results_md.read_bytes() if results_md.exists() else None) == before
