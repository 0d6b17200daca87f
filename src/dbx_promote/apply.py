"""Apply a plan to the folder, then verify the folder against it.

`apply_plan` returns what it touched (every path it sent a write or delete for) and the
verified listing, or raises `ApplyFailed` carrying the same, so a restore undoes exactly
the requests that were sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from dbx_promote.errors import VerificationFailed, WorkspaceError
from dbx_promote.layout import ENVIRONMENT_NOTEBOOK
from dbx_promote.parallel import run_parallel
from dbx_promote.plan import Change, DesiredObject, Plan
from dbx_promote.remote import RemoteObject
from dbx_promote.state import Folder
from dbx_promote.target import Content


@dataclass(frozen=True)
class Applied:
    """What an apply did: the paths it sent requests for, and the verified listing."""

    touched: frozenset[str]
    listing: list[RemoteObject]


class ApplyFailed(Exception):
    """An apply stopped: ``cause`` is why, ``touched`` what it had sent by then."""

    def __init__(self, cause: BaseException, touched: frozenset[str]) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.touched = touched


class _Progress:
    def __init__(self, folder: Folder, total: int) -> None:
        self.folder = folder
        self.total = total
        self.done = 0
        self.touched: set[str] = set()
        self._lock = threading.Lock()
        folder.events.progress(0, total)

    def touch(self, path: str) -> None:
        with self._lock:
            self.touched.add(path)

    def step(self) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        self.folder.events.progress(done, self.total)


def apply_plan(
    folder: Folder, desired: tuple[DesiredObject, ...], content: Content, plan: Plan
) -> Applied:
    """Make the folder match ``plan``; raises `ApplyFailed` (also on Ctrl-C)."""
    folder.events.phase("applying")
    progress = _Progress(folder, len(plan.writes) + len(plan.deletes))
    try:
        _apply(folder, {d.path: d for d in desired}, content, plan, progress)
        folder.events.phase("verifying")
        listing = verify(folder, plan)
    except (Exception, KeyboardInterrupt) as exc:
        raise ApplyFailed(exc, frozenset(progress.touched)) from exc
    return Applied(frozenset(progress.touched), listing)


def _apply(
    folder: Folder,
    desired: dict[str, DesiredObject],
    content: Content,
    plan: Plan,
    progress: _Progress,
) -> None:
    ws = folder.ws

    def delete(c: Change) -> None:
        progress.touch(c.path)
        ws.delete(folder.abs(c.path))

    # Objects in the way of a new folder, and objects changing type, go first.
    blocking = [c for c in plan.deletes if c.path in set(plan.directories)]
    for c in [*blocking, *(c for c in plan.writes if c.replace)]:
        delete(c)
    if plan.mkdirs:
        run_parallel(lambda d: ws.mkdirs(folder.abs(d)), plan.mkdirs, folder.workers)

    def write(c: Change) -> None:
        progress.touch(c.path)
        _import(folder, desired[c.path], content(c.path))
        progress.step()

    # The generated notebook only after every other import landed: if one fails,
    # `_environment` still matches the release the other notebooks belong to.
    writes = plan.writes
    run_parallel(write, [c for c in writes if c.path != ENVIRONMENT_NOTEBOOK], folder.workers)
    run_parallel(write, [c for c in writes if c.path == ENVIRONMENT_NOTEBOOK], folder.workers)
    removals = [c for c in plan.deletes if c not in blocking]
    run_parallel(_then(delete, progress.step), removals, folder.workers)
    for d in plan.rmdirs:
        try:
            ws.delete(folder.abs(d))
        except WorkspaceError as exc:  # not empty after all: leave it, it is harmless
            folder.events.warning(f"left folder {d} in place: {exc}")


def _then(fn: Callable[[Change], None], after: Callable[[], None]) -> Callable[[Change], None]:
    def both(c: Change) -> None:
        fn(c)
        after()

    return both


def _import(folder: Folder, d: DesiredObject, data: bytes) -> None:
    if d.kind == "notebook":
        folder.ws.import_notebook(
            folder.abs(d.path), data, language=d.language or "PYTHON", jupyter=d.format == "JUPYTER"
        )
    else:
        folder.ws.import_file(folder.abs(d.path), data)


def verify(folder: Folder, plan: Plan) -> list[RemoteObject]:
    """A fresh listing must show the plan's end state exactly; returns that listing."""
    listing = folder.listing()
    live = folder.layout.content(listing)
    problems: list[str] = []
    for path, (otype, lang) in sorted(plan.end_state.items()):
        obj = live.objects.get(path)
        if obj is None:
            problems.append(
                f"{path} is a DIRECTORY, expected {otype}"
                if path in live.dirs
                else f"{path} is missing"
            )
        elif obj.object_type != otype:
            problems.append(f"{path} is a {obj.object_type}, expected {otype}")
        elif lang and obj.language and obj.language != lang:
            problems.append(f"{path} is {obj.language}, expected {lang}")
    problems += [
        f"{c.path} should have been deleted"
        for c in plan.deletes
        if c.path in live.objects or c.path in live.dirs
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        )
        raise VerificationFailed(f"the folder does not match the plan after apply: {shown}")
    return listing
