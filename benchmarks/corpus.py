"""Deterministic notebook corpora and configs for the deploy benchmarks.

`make_corpus` writes ``count`` Databricks source notebooks (4 in 5 Python, 1 in 5 SQL) of
a few KB each into ``folders`` folders; the same arguments always give the same bytes.
`change_notebooks` copies a corpus and edits ``n`` chosen notebooks (a deterministic,
evenly spread selection) so a redeploy has exactly ``n`` updates.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

WORDS = ["orders", "revenue", "customer", "region", "amount", "sku", "store", "week"]


def _notebook(rng: random.Random, index: int, sql: bool, size: int) -> bytes:
    if sql:
        lines = ["-- Databricks notebook source", f"-- notebook {index}", ""]
        while sum(len(x) + 1 for x in lines) < size:
            a, b = rng.sample(WORDS, 2)
            lines.append(
                f"SELECT {a}, sum({b}) AS total FROM main.sales.{a}_{b} "
                f"WHERE amount > {rng.randrange(10_000)} GROUP BY {a};"
            )
            if rng.random() < 0.1:
                lines += ["", "-- COMMAND ----------", ""]
    else:
        lines = ["# Databricks notebook source", "# MAGIC %run ../_environment", ""]
        while sum(len(x) + 1 for x in lines) < size:
            a, b = rng.sample(WORDS, 2)
            lines.append(
                f"df_{rng.randrange(1000)} = spark.table(CONFIG['catalog'] + '.sales.{a}')"
                f".filter('{b} > {rng.randrange(10_000)}')  # {rng.random():.6f}"
            )
            if rng.random() < 0.1:
                lines += ["", "# COMMAND ----------", ""]
    return ("\n".join(lines) + "\n").encode()


def notebook_paths(count: int, folders: int = 10) -> list[str]:
    """Relative paths of a corpus of ``count`` notebooks, in creation order."""
    paths = []
    for i in range(count):
        ext = "sql" if i % 5 == 4 else "py"
        paths.append(f"area_{i % folders:02d}/notebook_{i:04d}.{ext}")
    return paths


def make_corpus(target: Path, count: int, folders: int = 10, size: int = 3000) -> int:
    """Write the corpus into ``target`` (emptied first); return its total size in bytes."""
    if target.exists():
        shutil.rmtree(target)
    rng = random.Random(20261129 + count)
    total = 0
    for i, rel in enumerate(notebook_paths(count, folders)):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _notebook(rng, i, rel.endswith(".sql"), size)
        path.write_bytes(data)
        total += len(data)
    return total


def change_notebooks(source: Path, target: Path, n: int, tag: str) -> list[str]:
    """Copy ``source`` to ``target`` and edit ``n`` notebooks; return their paths."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    step = max(1, len(files) // max(n, 1))
    chosen = [files[(i * step + len(tag)) % len(files)] for i in range(n)]
    for rel in chosen:
        path = target / rel
        comment = "--" if rel.endswith(".sql") else "#"
        path.write_bytes(path.read_bytes() + f"{comment} changed in {tag}\n".encode())
    return chosen


def write_config(
    path: Path,
    source: Path,
    envs: dict[str, dict[str, object]],
    project: str = "bench",
) -> Path:
    """Write a dbx-promote.yml for ``source`` with ``envs`` (name -> settings)."""
    lines = [f"project: {project}", f"source: {source.as_posix()}", "environments:"]
    for name, settings in envs.items():
        lines.append(f"  {name}:")
        for key, value in settings.items():
            lines.append(f"    {key}: {value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
