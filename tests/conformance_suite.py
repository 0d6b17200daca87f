"""The conformance suite: behaviours of the Databricks service the emulator claims, as data.

A `Behaviour` is one row: a name, the request it makes (in words), the answer the emulator
gives (``expected``, normalised to JSON), whether that answer is an unverified choice of the
emulator (``choice``: its wording in docs/emulator.md, marked [UNV] in reports) and a
``probe`` that makes the request through the real SDK inside a scratch folder and returns
the answer. The same rows run

- against the emulator in `make test` (tests/test_conformance.py: each answer must equal
  ``expected``), and
- against a real workspace with `make conformance-live` (DBX_PROMOTE_LIVE_HOST and the usual
  SDK auth): every row runs on a local emulator and on the workspace, and the report
  (conformance-report.json + conformance-report.md) says, row by row, the emulator's answer,
  the service's answer and whether they are the same.

Live, a probe may only write inside its own folder under a fresh scratch folder in the
caller's home (``Scratch.root``), which the runner creates and removes; rows that would
have to touch anything else are ``live=False``. Rows that need compute (``needs="compute"``)
run only when DBX_PROMOTE_LIVE_CLUSTER_ID or DBX_PROMOTE_LIVE_SERVERLESS=1 says what to use,
and then share one tiny notebook run.
"""

from __future__ import annotations

import json
import platform
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError, NotFound
from databricks.sdk.version import __version__ as sdk_version

SUITE_TEST = "tests/test_conformance.py::test_the_emulator_gives_the_documented_answer"
SCRATCH_PREFIX = "dbx-promote-conformance-"


@dataclass
class Scratch:
    """Where one probe runs: a client, its own empty folder, and the signed-in user."""

    w: WorkspaceClient
    root: str
    user: str
    compute: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)  # e.g. the one notebook run
    # A client per token, for rows with needs="principals" (emulator only; see
    # conformance_permissions.py); None where there is one identity only.
    as_: Callable[[str], WorkspaceClient] | None = None

    def path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}" if rel else self.root


Probe = Callable[[Scratch], Any]


@dataclass(frozen=True)
class Behaviour:
    """One row of the suite (see the module docstring)."""

    name: str
    area: str  # workspace | directory-import | jobs | permissions
    request: str
    expected: Any
    probe: Probe
    choice: str | None = None  # docs/emulator.md's wording when the service is unverified
    live: bool = True  # False: the probe would touch something outside its folder
    needs: str = ""  # "compute": a notebook run; "principals": other identities

    @property
    def unverified(self) -> bool:
        return self.choice is not None

    @property
    def test(self) -> str:
        return f"{SUITE_TEST}[{self.name}]"


def answer(fn: Callable[[], Any]) -> Any:
    """What a call gives: its value, or the SDK exception as class, error code and message."""
    try:
        return fn()
    except DatabricksError as exc:
        return {
            "raises": type(exc).__name__,
            "error_code": exc.error_code,
            "message": str(exc).split(" Config: ")[0],
        }


def normalise(value: Any, s: Scratch) -> Any:
    """The answer with the scratch folder and the user's name replaced, as JSON would hold it."""

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return v.replace(s.root, "<scratch>").replace(s.user, "<user>")
        if isinstance(v, dict):
            return {walk(str(k)): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if hasattr(v, "value") and isinstance(v.value, str):  # an SDK enum
            return walk(v.value)
        return v

    return json.loads(json.dumps(walk(value), default=str))


def run_row(row: Behaviour, w: WorkspaceClient, base: str, user: str, **kw: Any) -> Any:
    """Run ``row`` in a fresh folder ``base/<row name>`` and return its normalised answer."""
    root = f"{base}/{row.name.replace('/', '_')}"
    w.workspace.mkdirs(root)
    s = Scratch(w, root, user, **kw)
    return normalise(answer(lambda: row.probe(s)), s)


@dataclass
class Outcome:
    row: Behaviour
    emulator: Any = None
    service: Any = None
    skipped: str = ""

    @property
    def same(self) -> bool | None:
        return None if self.skipped else self.emulator == self.service

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.row.name,
            "area": self.row.area,
            "request": self.row.request,
            "emulator": self.emulator,
            "service": self.service,
            "same": self.same,
            "unverified": self.row.unverified,
            "emulator_choice": self.row.choice,
            "test": self.row.test,
            "skipped": self.skipped,
        }


class ScratchFolder:
    """A fresh folder under the caller's home, removed (recursively) on exit."""

    def __init__(self, w: WorkspaceClient) -> None:
        self.w = w
        self.user = str(w.current_user.me().user_name)
        self.path = f"/Users/{self.user}/{SCRATCH_PREFIX}{secrets.token_hex(4)}"

    def __enter__(self) -> ScratchFolder:
        # A fresh name, checked first: the suite never writes into something that exists.
        try:
            self.w.workspace.get_status(self.path)
        except NotFound:
            pass
        else:
            raise RuntimeError(f"{self.path} already exists; not touching it")
        self.w.workspace.mkdirs(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.w.workspace.delete(self.path, recursive=True)


def run_live(
    service: WorkspaceClient,
    emulator: WorkspaceClient,
    rows: Iterable[Behaviour],
    *,
    compute: dict[str, Any] | None = None,
) -> list[Outcome]:
    """Every live row on the emulator and on the service, each in its own scratch folder."""
    outcomes = []
    shared_svc: dict[str, Any] = {}
    shared_emu: dict[str, Any] = {}
    with ScratchFolder(service) as svc, ScratchFolder(emulator) as emu:
        for row in rows:
            out = Outcome(row)
            if row.needs == "principals":
                out.skipped = "emulator only: it needs identities other than the caller"
            elif not row.live:
                out.skipped = "emulator only: it would touch something outside the scratch folder"
            elif row.needs == "compute" and not compute:
                out.skipped = "needs compute: set DBX_PROMOTE_LIVE_CLUSTER_ID or DBX_PROMOTE_LIVE_SERVERLESS=1"
            else:
                extra = {"compute": compute or {}}
                out.emulator = run_row(
                    row, emulator, emu.path, emu.user, shared=shared_emu, **extra
                )
                out.service = run_row(row, service, svc.path, svc.user, shared=shared_svc, **extra)
            outcomes.append(out)
    return outcomes


def write_report(outcomes: list[Outcome], directory: Path, *, host: str) -> dict[str, Any]:
    """Write conformance-report.json and conformance-report.md; return the JSON document."""
    ran = [o for o in outcomes if not o.skipped]
    report = {
        "host": host,
        "at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "databricks_sdk": sdk_version,
        "python": platform.python_version(),
        "summary": {
            "rows": len(outcomes),
            "ran": len(ran),
            "same": sum(1 for o in ran if o.same),
            "different": sum(1 for o in ran if not o.same),
            "skipped": len(outcomes) - len(ran),
            "unverified_confirmed": sum(1 for o in ran if o.same and o.row.unverified),
            "unverified_different": sum(1 for o in ran if not o.same and o.row.unverified),
        },
        "rows": [o.to_dict() for o in outcomes],
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "conformance-report.json").write_text(json.dumps(report, indent=2) + "\n")
    (directory / "conformance-report.md").write_text(markdown(report))
    return report


def _cell(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table: one line per behaviour, [UNV] marking the choices."""
    s = report["summary"]
    lines = [
        f"# Emulator conformance against {report['host']}",
        "",
        f"{report['at']}, databricks-sdk {report['databricks_sdk']}: {s['ran']} of "
        f"{s['rows']} behaviours ran, {s['same']} same, {s['different']} different "
        f"({s['unverified_different']} of them [UNV] choices), {s['skipped']} skipped.",
        "",
        "| behaviour | request | emulator | service | result | emulator test |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        mark = " [UNV]" if r["unverified"] else ""
        if r["skipped"]:
            result = f"skipped: {r['skipped']}"
        else:
            result = "same" if r["same"] else "**DIFFERENT**"
        lines.append(
            f"| {r['name']}{mark} | {r['request']} | {_cell(r['emulator'])} | "
            f"{_cell(r['service'])} | {result} | `{r['test']}` |"
        )
    return "\n".join(lines) + "\n"
