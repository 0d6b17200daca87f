"""Runs one prepared notebook program in its own process (the emulator's "driver").

Started by `notebook_exec` as ``python -I notebook_runner.py PROGRAM.json RESULT.json``.
Standard library only and no dbx_promote import: it runs isolated (``-I``), in the
notebook's folder, with only the notebook's folder and the project root on ``sys.path``.

PROGRAM.json: ``{"cells": [{"kind": "code"|"skip"|"error", ...}], "params": {..},
"sys_path": [..]}``. RESULT.json gets ``{"status": "success"|"failed", "result",
"error", "error_trace"}``. Cell output goes to stdout/stderr, which the emulator keeps as
the run's logs.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import threading
import time
import traceback
from typing import Any

NO_SPARK_NAMES = frozenset({"spark", "sc", "sqlContext"})
NO_SPARK_HINT = (
    "the dbx-promote emulator runs notebooks without Spark, so there is no spark, sc or "
    "sqlContext: keep Spark out of emulated tests or script this notebook with a job rule"
)


class NotebookExit(BaseException):
    """Raised by ``dbutils.notebook.exit``; a BaseException so ``except Exception`` keeps it."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class InputWidgetNotDefined(Exception):
    """``dbutils.widgets.get`` of a widget that is neither defined nor a parameter."""


class NotAvailableInEmulator(Exception):
    """A dbutils feature the emulator does not provide."""


class _Widgets:
    def __init__(self, params: dict[str, str]) -> None:
        self._params = dict(params)
        self._defaults: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name in self._params:
            return self._params[name]
        if name in self._defaults:
            return self._defaults[name]
        raise InputWidgetNotDefined(f"No input widget named {name} is defined")

    def getArgument(self, name: str, default: str | None = None) -> str | None:
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return default

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:
        self._defaults[name] = str(defaultValue)

    def dropdown(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        if defaultValue not in choices:
            raise ValueError(
                f"Default value {defaultValue!r} of dropdown widget {name} is not in its choices"
            )
        self._defaults[name] = str(defaultValue)

    combobox = text

    def multiselect(
        self,
        name: str,
        defaultValue: str,
        choices: list[str],
        label: str | None = None,
    ) -> None:
        self.dropdown(name, defaultValue, choices, label)

    def remove(self, name: str) -> None:
        self._defaults.pop(name, None)

    def removeAll(self) -> None:
        self._defaults.clear()


class _Notebook:
    def exit(self, value: Any) -> None:
        raise NotebookExit(value if isinstance(value, str) else str(value))

    def run(self, *args: Any, **kwargs: Any) -> str:
        raise NotAvailableInEmulator("dbutils.notebook.run is not available in the emulator")


class _Unavailable:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise NotAvailableInEmulator(
            f"dbutils.{self._name}.{attr} is not available in the emulator"
        )


class DBUtils:
    """The part of ``dbutils`` that makes sense without a cluster."""

    def __init__(self, params: dict[str, str]) -> None:
        self.widgets = _Widgets(params)
        self.notebook = _Notebook()
        self.fs = _Unavailable("fs")
        self.secrets = _Unavailable("secrets")
        self.jobs = _Unavailable("jobs")
        self.library = _Unavailable("library")


def display(*objects: Any, **kwargs: Any) -> None:
    """Print what a notebook would render."""
    for obj in objects:
        print(obj)


def displayHTML(html: str) -> None:
    print(html)


def _error_line(exc: BaseException) -> str:
    line = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, NameError) and getattr(exc, "name", None) in NO_SPARK_NAMES:
        return f"{line} ({NO_SPARK_HINT})"
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "pyspark":
        return f"{line} ({NO_SPARK_HINT})"
    return line


def _trace(exc: BaseException) -> str:
    # Drop this runner's own frame: the trace starts in the notebook's cell.
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    lines = traceback.format_exception(type(exc), exc, tb)
    lines[-1] = _error_line(exc) + "\n"
    return "".join(lines)


def run(program: dict[str, Any]) -> dict[str, Any]:
    """Execute the program's cells in one namespace; return the RESULT document."""
    for entry in reversed(program.get("sys_path", [])):
        sys.path.insert(0, entry)
    dbutils = DBUtils(program.get("params", {}))
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": __builtins__,
        "dbutils": dbutils,
        "display": display,
        "displayHTML": displayHTML,
    }
    for cell in program["cells"]:
        kind = cell["kind"]
        if kind == "skip":
            print(f"[emulator] {cell['note']}", flush=True)
            continue
        if kind == "error":
            print(cell["error"], file=sys.stderr, flush=True)
            return {"status": "failed", "error": cell["error"], "error_trace": cell["error"]}
        filename = cell["filename"]
        source = cell["source"]
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            exec(compile(source, filename, "exec"), namespace)
        except NotebookExit as done:
            return {"status": "success", "result": done.value}
        except SystemExit as stop:
            if stop.code in (None, 0):
                return {"status": "success"}
            return _failed(stop)
        except BaseException as exc:  # the notebook's own error, reported as the run's
            return _failed(exc)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
    return {"status": "success"}


def _failed(exc: BaseException) -> dict[str, Any]:
    trace = _trace(exc)
    print(trace, file=sys.stderr, end="", flush=True)
    return {"status": "failed", "error": _error_line(exc), "error_trace": trace}


def _exit_with_parent() -> None:
    """End this process when the emulator that started it is gone (killed, crashed)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: list[str]) -> int:
    _exit_with_parent()
    program_file, result_file = argv[1], argv[2]
    with open(program_file, encoding="utf-8") as f:
        program = json.load(f)
    outcome = run(program)
    with open(result_file + ".tmp", "w", encoding="utf-8") as f:
        json.dump(outcome, f)
    os.replace(result_file + ".tmp", result_file)
    return 0 if outcome["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
