"""Build benchmark: 2,000 source notebooks of about 20 KB each.

Records wall time and peak memory of `build_artifact` (and of `open_artifact`, which
re-hashes every entry). Peak memory is measured with ``tracemalloc`` (Python allocations
during the build) and the process's maximum RSS; it should stay near the size of one
notebook, not of the artifact, because files are streamed into the zip.

Run: ``python benchmarks/bench_build.py [WORKDIR]`` (default ``benchmarks/.work/build``).
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from dbx_promote.artifact import BuildOptions, build_artifact, open_artifact

NOTEBOOKS = 2000
NOTEBOOK_SIZE = 20 * 1024
FOLDERS = 40


def make_notebooks(source: Path, count: int = NOTEBOOKS, size: int = NOTEBOOK_SIZE) -> int:
    """Write ``count`` Python source notebooks of about ``size`` bytes; return total bytes."""
    rng = random.Random(42)  # same corpus on every run, so results compare
    words = ["orders", "revenue", "customer", "region", "amount", "select", "join", "filter"]
    total = 0
    for i in range(count):
        lines = ["# Databricks notebook source", "# MAGIC %run ../_environment", ""]
        while sum(len(x) + 1 for x in lines) < size:
            lines.append(
                f"df_{rng.randrange(1000)} = spark.table('{'_'.join(rng.choices(words, k=3))}')"
                f".filter('amount > {rng.randrange(10_000)}')  # {rng.random():.6f}"
            )
            if rng.random() < 0.05:
                lines += ["", "# COMMAND ----------", ""]
        path = source / f"area_{i % FOLDERS:02d}" / f"notebook_{i:04d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = ("\n".join(lines) + "\n").encode()
        path.write_bytes(data)
        total += len(data)
    return total


def _max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def run(workdir: Path) -> dict[str, Any]:
    """Generate the corpus under ``workdir``, build and verify it; return the measurements."""
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    source, out = workdir / "notebooks", workdir / "dist"
    input_bytes = make_notebooks(source)

    tracemalloc.start()
    started = time.perf_counter()
    artifact = build_artifact(BuildOptions(project="bench", source=source, version="0.0.0"), out)
    build_seconds = time.perf_counter() - started
    _, build_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    open_artifact(artifact.path)
    verify_seconds = time.perf_counter() - started
    _, verify_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "notebooks": len(artifact.manifest.objects),
        "input_mb": round(input_bytes / 1e6, 1),
        "artifact_mb": round(artifact.path.stat().st_size / 1e6, 1),
        "build_seconds": round(build_seconds, 2),
        "build_peak_python_mb": round(build_peak / 1e6, 1),
        "verify_seconds": round(verify_seconds, 2),
        "verify_peak_python_mb": round(verify_peak / 1e6, 1),
        "max_rss_mb": round(_max_rss_mb(), 1),
    }


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / ".work" / "build"
    print(json.dumps(run(target), indent=2))
