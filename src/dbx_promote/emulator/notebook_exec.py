"""Executing a Python source notebook of the emulated workspace, for real, in a subprocess.

`build_program` turns the notebook into a list of cells (``%run`` inlined from the
workspace tree, ``%md``/``%sql``/... skipped). `NotebookProcess` materialises the
project's workspace files into a temporary folder, runs the cells there with
`notebook_runner` (``python -I``, the notebook's folder as the working directory) and
turns what happened into an `Outcome`: SUCCESS, FAILED (with the error's first line and
its trace), TIMEDOUT or CANCELED, plus the captured output as logs.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbx_promote.emulator.store import ApiError, Store, parse_path

HEADER = "# Databricks notebook source"
CELL_SEPARATOR = "# COMMAND ----------"
MAGIC = "# MAGIC"
MAX_RUN_DEPTH = 16
OUTPUT_LIMIT = 5 * 1024 * 1024
# Cells of another language or for people: not executed, and not worth a log line.
QUIET_MAGICS = frozenset({"%md", "%md-sandbox", "%sql", "%scala", "%r"})
# The folder marker dbx-promote writes, and the notebook every deployed root has.
ROOT_MARKERS = ("_environment", ".dbx-promote")
RUNNER = Path(__file__).with_name("notebook_runner.py")
# What the notebook process inherits; everything else (credentials above all) stays out.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT")
POLL_SECONDS = 0.02


def notebook_not_found(path: str) -> str:
    """The error a ``%run`` of a missing notebook raises."""
    return (
        f"Exception: Notebook not found: {path}. Notebooks can be specified via a relative "
        "path (./Notebook or ../folder/Notebook) or via an absolute path "
        "(/Abs/Path/to/Notebook). Make sure you are specifying the path correctly."
    )


def split_cells(source: str) -> list[str]:
    """The cells of Python notebook source, header dropped, blank edges trimmed."""
    lines = source.replace("\r\n", "\n").split("\n")
    if lines and lines[0].rstrip() == HEADER:
        lines = lines[1:]
    cells: list[list[str]] = [[]]
    for line in lines:
        if line.rstrip() == CELL_SEPARATOR:
            cells.append([])
        else:
            cells[-1].append(line)
    return ["\n".join(cell).strip("\n") for cell in cells]


def _unmagic(cell: str) -> list[str] | None:
    """The lines of a cell made only of ``# MAGIC`` lines, without the prefix; else None."""
    lines = cell.split("\n")
    if not any(line.strip() for line in lines):
        return None
    if not all(line.startswith(MAGIC) for line in lines if line.strip()):
        return None
    return [line[len(MAGIC) :].removeprefix(" ") if line.strip() else "" for line in lines]


def _resolve(folder: str, target: str) -> str:
    joined = target if target.startswith("/") else posixpath.join(folder, target)
    return parse_path(posixpath.normpath(joined)).canonical


class _ProgramBuilder:
    """Flatten a notebook and everything it ``%run``s into one list of cells."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cells: list[dict[str, Any]] = []

    def add_notebook(self, path: str, source: str, stack: tuple[str, ...]) -> bool:
        """Append ``path``'s cells; False once an error cell ends the program."""
        folder = posixpath.dirname(path) or "/"
        for index, cell in enumerate(split_cells(source), start=1):
            magic = _unmagic(cell)
            if magic is None:
                if cell.strip():
                    name = f"<notebook {path}, cell {index}>"
                    self.cells.append({"kind": "code", "source": cell + "\n", "filename": name})
                continue
            first = next(line for line in magic if line.strip()).strip()
            command = first.split()[0]
            if command == "%python":
                start = next(i for i, line in enumerate(magic) if line.strip())
                body = "\n".join(magic[start + 1 :])
                name = f"<notebook {path}, cell {index}>"
                self.cells.append({"kind": "code", "source": body + "\n", "filename": name})
            elif command == "%run":
                if not self._run(folder, first, (*stack, path)):
                    return False
            elif command not in QUIET_MAGICS:
                note = f"skipped a {command} cell of {path}: the emulator does not run {command}"
                self.cells.append({"kind": "skip", "note": note})
        return True

    def _run(self, folder: str, line: str, stack: tuple[str, ...]) -> bool:
        try:
            words = shlex.split(line)
        except ValueError:
            return self._error(f"Exception: cannot parse {line!r}")
        if len(words) != 2:
            return self._error(
                f"Exception: {line!r}: the emulator runs %run with exactly one notebook path "
                "and no arguments"
            )
        try:
            target = _resolve(folder, words[1])
            info = self.store.get_status(parse_path(target))
        except ApiError:
            return self._error(notebook_not_found(words[1]))
        if info["object_type"] != "NOTEBOOK":
            return self._error(notebook_not_found(words[1]))
        if info.get("language") != "PYTHON":
            return self._error(
                f"Exception: %run {words[1]}: {target} is a {info.get('language')} notebook; "
                "the emulator runs only Python notebooks"
            )
        if target in stack or len(stack) >= MAX_RUN_DEPTH:
            return self._error(f"Exception: %run {words[1]}: recursive %run of {target}")
        source = self.store.read(target).decode("utf-8", errors="replace")
        return self.add_notebook(target, source, stack)

    def _error(self, message: str) -> bool:
        self.cells.append({"kind": "error", "error": message})
        return False


def build_program(store: Store, path: str, source: str) -> list[dict[str, Any]]:
    """The cells to execute for the Python notebook at canonical ``path`` with ``source``."""
    builder = _ProgramBuilder(store)
    builder.add_notebook(path, source, ())
    return builder.cells


def project_root(store: Store, folder: str) -> str:
    """The nearest folder at or above ``folder`` holding ``_environment`` or ``.dbx-promote``.

    Without one, ``folder`` itself: then only the notebook's own folder is materialised.
    """
    current = folder
    while True:
        for marker in ROOT_MARKERS:
            try:
                store.get_status(parse_path(posixpath.join(current, marker)))
                return current
            except ApiError:
                pass
        if current == "/":
            return folder
        current = posixpath.dirname(current) or "/"


def materialise(store: Store, root: str, dest: Path) -> None:
    """Write every workspace file under ``root`` to ``dest`` + its path (hidden folders skipped).

    Notebooks are not written: as on Databricks they cannot be imported, only ``%run``.
    """
    for path, info in store.tree(root).items():
        relative = path[len(root) :].lstrip("/")
        if any(part.startswith(".") for part in relative.split("/") if part):
            continue
        target = dest / path.lstrip("/")
        if info["object_type"] == "DIRECTORY":
            target.mkdir(parents=True, exist_ok=True)
        elif info["object_type"] == "FILE":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(store.read(path))


@dataclass
class Outcome:
    """How one notebook execution ended."""

    state: str  # SUCCESS, FAILED, TIMEDOUT or CANCELED
    result: str | None = None
    error: str | None = None
    error_trace: str | None = None
    logs: str = ""
    logs_truncated: bool = False


def _tail(data: bytes) -> tuple[str, bool]:
    if len(data) <= OUTPUT_LIMIT:
        return data.decode("utf-8", errors="replace"), False
    return data[-OUTPUT_LIMIT:].decode("utf-8", errors="replace"), True


class NotebookProcess:
    """One execution of a Python notebook; `run` blocks until it ends, `cancel` stops it."""

    def __init__(self, store: Store, path: str, source: str, params: dict[str, str]) -> None:
        self.store = store
        self.path = path
        self.source = source
        self.params = params
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Stop the execution (now, or before it starts); `run` returns CANCELED."""
        self._cancel.set()

    def run(self, timeout: float | None) -> Outcome:
        """Execute; after ``timeout`` seconds (None: never) kill it and return TIMEDOUT."""
        work = Path(tempfile.mkdtemp(prefix="dbx-emulator-run-"))
        try:
            return self._run_in(work, timeout)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _prepare(self, work: Path) -> tuple[Path, Path, Path]:
        folder = posixpath.dirname(self.path) or "/"
        root = project_root(self.store, folder)
        tree = work / "Workspace"
        materialise(self.store, root, tree)
        cwd = tree / folder.lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)
        sys_path = [str(cwd)] + ([str(tree / root.lstrip("/"))] if root != folder else [])
        program = {
            "cells": build_program(self.store, self.path, self.source),
            "params": self.params,
            "sys_path": sys_path,
        }
        program_file = work / "program.json"
        program_file.write_text(json.dumps(program), encoding="utf-8")
        return cwd, program_file, work / "result.json"

    def _run_in(self, work: Path, timeout: float | None) -> Outcome:
        if self._cancel.is_set():
            return Outcome("CANCELED")
        cwd, program_file, result_file = self._prepare(work)
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        env["DBX_PROMOTE_EMULATOR"] = "1"
        log_path = work / "output.log"
        argv = [sys.executable, "-I", "-u", "-X", "utf8", str(RUNNER)]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [*argv, str(program_file), str(result_file)],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            ended = self._wait(proc, timeout)
        logs, truncated = _tail(log_path.read_bytes())
        if ended != "EXITED":
            return Outcome(ended, logs=logs, logs_truncated=truncated)
        return _outcome_of(result_file, proc.returncode, logs, truncated)

    def _wait(self, proc: subprocess.Popen[bytes], timeout: float | None) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                proc.wait(POLL_SECONDS)
                return "EXITED"
            except subprocess.TimeoutExpired:
                pass
            if self._cancel.is_set():
                _kill(proc)
                return "CANCELED"
            if deadline is not None and time.monotonic() >= deadline:
                _kill(proc)
                return "TIMEDOUT"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # The whole session: a notebook that started children must not leave them behind.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _outcome_of(result_file: Path, returncode: int, logs: str, truncated: bool) -> Outcome:
    try:
        result = json.loads(result_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        error = f"The notebook process exited with code {returncode} before the notebook ended"
        return Outcome(
            "FAILED", error=error, error_trace=error, logs=logs, logs_truncated=truncated
        )
    if result.get("status") == "success":
        return Outcome("SUCCESS", result=result.get("result"), logs=logs, logs_truncated=truncated)
    return Outcome(
        "FAILED",
        error=result.get("error"),
        error_trace=result.get("error_trace"),
        logs=logs,
        logs_truncated=truncated,
    )
