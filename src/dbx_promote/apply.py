"""Apply a plan to the folder, then verify the folder against it.

`apply_plan` returns what it touched (every path it sent a write or delete for) and the
verified listing, or raises `ApplyFailed` carrying the same, so a restore undoes exactly
the requests that were sent.

Given a `BulkPlan`, new folders are created first, each by one directory import (parents
before children). A folder in ``touched`` is one such import: undoing it is one recursive
delete. A directory import the workspace refuses makes the rest go one object at a time;
one that landed differently (a notebook missing, another type or language, an extra
object) is repaired object by object before verification passes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from dbx_promote.bulk import BulkImport, BulkPlan, build_zip
from dbx_promote.errors import BulkImportRefused, ObjectExists, VerificationFailed, WorkspaceError
from dbx_promote.known import patched, touched_paths
from dbx_promote.layout import ENVIRONMENT_NOTEBOOK, FolderContent
from dbx_promote.parallel import run_parallel
from dbx_promote.plan import Change, DesiredObject, Plan
from dbx_promote.remote import RemoteObject
from dbx_promote.state import Folder
from dbx_promote.target import Content


@dataclass(frozen=True)
class BulkOutcome:
    """How the directory imports of one apply went."""

    imports: int = 0  # directory imports that landed
    refused: bool = False  # the workspace refused directory import itself
    per_object: tuple[str, ...] = ()  # bulk folders imported object by object instead
    repaired: tuple[str, ...] = ()  # objects a directory import did not land as planned


@dataclass(frozen=True)
class Applied:
    """What an apply did: the paths it sent requests for, and the verified listing."""

    touched: frozenset[str]
    listing: list[RemoteObject]
    bulk: BulkOutcome = BulkOutcome()


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

    def untouch(self, path: str) -> None:
        with self._lock:
            self.touched.discard(path)

    def step(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            done = self.done
        self.folder.events.progress(done, self.total)


def apply_plan(
    folder: Folder,
    desired: tuple[DesiredObject, ...],
    content: Content,
    plan: Plan,
    bulk: BulkPlan | None = None,
    *,
    known: list[RemoteObject] | None = None,
) -> Applied:
    """Make the folder match ``plan``, new folders in bulk when ``bulk`` says how.

    ``known`` is the listing the plan was made from under the lock: when the plan writes
    few paths one at a time, only those are looked up to verify (known.py).
    Raises `ApplyFailed` (also on Ctrl-C).
    """
    folder.events.phase("applying")
    progress = _Progress(folder, len(plan.writes) + len(plan.deletes))
    by_path = {d.path: d for d in desired}
    try:
        outcome, landed = _apply(folder, by_path, content, plan, progress, bulk)
        folder.events.phase("verifying")
        if known is not None and not landed and (paths := touched_paths(plan)) is not None:
            listing = _looked_up(folder, known, paths)
            _raise_problems(_problems(plan, folder.layout.content(listing), frozenset()))
            return Applied(frozenset(progress.touched), listing, outcome)
        listing, repaired = _verify_or_repair(folder, by_path, content, plan, landed, progress)
    except (Exception, KeyboardInterrupt) as exc:
        raise ApplyFailed(exc, frozenset(progress.touched)) from exc
    return Applied(frozenset(progress.touched), listing, replace(outcome, repaired=repaired))


def _apply(
    folder: Folder,
    desired: dict[str, DesiredObject],
    content: Content,
    plan: Plan,
    progress: _Progress,
    bulk: BulkPlan | None,
) -> tuple[BulkOutcome, frozenset[str]]:
    ws = folder.ws

    def delete(c: Change) -> None:
        progress.touch(c.path)
        ws.delete(folder.abs(c.path))

    # Objects in the way of a new folder, and objects changing type, go first.
    blocking = [c for c in plan.deletes if c.path in set(plan.directories)]
    for c in [*blocking, *(c for c in plan.writes if c.replace)]:
        delete(c)
    outcome, landed = BulkOutcome(), frozenset[str]()
    mkdirs = plan.mkdirs
    if bulk is not None and bulk.waves:
        outcome, landed = _create_in_bulk(folder, desired, content, bulk, progress)
        # After a fallback, every new folder may still be missing; mkdirs of one that
        # exists is harmless.
        mkdirs = plan.mkdirs if outcome.per_object else bulk.mkdirs
    if mkdirs:
        run_parallel(lambda d: ws.mkdirs(folder.abs(d)), mkdirs, folder.workers)

    def write(c: Change) -> None:
        progress.touch(c.path)
        _import(folder, desired[c.path], content(c.path))
        progress.step()

    # The generated notebook only after every other import landed: if one fails,
    # `_environment` still matches the release the other notebooks belong to.
    writes = [c for c in plan.writes if c.path not in landed]
    run_parallel(write, [c for c in writes if c.path != ENVIRONMENT_NOTEBOOK], folder.workers)
    run_parallel(write, [c for c in writes if c.path == ENVIRONMENT_NOTEBOOK], folder.workers)
    removals = [c for c in plan.deletes if c not in blocking]
    run_parallel(_then(delete, progress.step), removals, folder.workers)
    for d in plan.rmdirs:
        try:
            ws.delete(folder.abs(d))
        except WorkspaceError as exc:  # not empty after all: leave it, it is harmless
            folder.events.warning(f"left folder {d} in place: {exc}")
    return outcome, landed


class _Waves:
    """The directory imports of one apply, wave after wave, and what became of them."""

    def __init__(
        self,
        folder: Folder,
        desired: dict[str, DesiredObject],
        content: Content,
        progress: _Progress,
    ) -> None:
        self.folder, self.desired, self.content, self.progress = folder, desired, content, progress
        self.landed: set[str] = set()
        self.per_object: list[str] = []
        self.refused = False
        self.imports = 0
        self._lock = threading.Lock()

    def mkdir(self, rel: str) -> None:
        self.folder.ws.mkdirs(self.folder.abs(rel))

    def send(self, imp: BulkImport) -> None:
        if self.refused:  # another import of this wave was refused meanwhile
            with self._lock:
                self.per_object.append(imp.folder)
            return
        data = build_zip(imp, self.desired, self.content)
        for p in (imp.folder, *imp.paths):
            self.progress.touch(p)
        try:
            self.folder.ws.import_directory(self.folder.abs(imp.folder), data)
        except (BulkImportRefused, ObjectExists) as exc:
            # Refused: nothing landed. Exists: someone's folder, or ours after the SDK
            # resent a dropped request; which cannot be told, so the folder is not one
            # write to undo (its objects, imported one by one now, are).
            self.progress.untouch(imp.folder)
            with self._lock:
                self.refused = self.refused or isinstance(exc, BulkImportRefused)
                self.per_object.append(imp.folder)
            return
        with self._lock:
            self.landed.update(imp.paths)
            self.imports += 1
        self.progress.step(len(imp.paths))


def _create_in_bulk(
    folder: Folder,
    desired: dict[str, DesiredObject],
    content: Content,
    bulk: BulkPlan,
    progress: _Progress,
) -> tuple[BulkOutcome, frozenset[str]]:
    """Send the waves of ``bulk``; after a refusal, what is left goes per object."""
    waves = _Waves(folder, desired, content, progress)
    for i, wave in enumerate(bulk.waves):
        if waves.per_object:
            waves.per_object += [imp.folder for w in bulk.waves[i:] for imp in w.imports]
            break
        tasks = [lambda d=d: waves.mkdir(d) for d in wave.mkdirs]
        tasks += [lambda imp=imp: waves.send(imp) for imp in wave.imports]
        run_parallel(lambda task: task(), tasks, folder.workers)
    if waves.refused:
        folder.events.warning(
            "the workspace refused a directory import; importing those folders one object "
            "at a time (later deploys to this folder will not try again)"
        )
    outcome = BulkOutcome(waves.imports, waves.refused, tuple(sorted(waves.per_object)))
    return outcome, frozenset(waves.landed)


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
    _raise_problems(_problems(plan, folder.layout.content(listing), frozenset()))
    return listing


def _verify_or_repair(
    folder: Folder,
    desired: dict[str, DesiredObject],
    content: Content,
    plan: Plan,
    landed: frozenset[str],
    progress: _Progress,
) -> tuple[list[RemoteObject], tuple[str, ...]]:
    """Verify; when only what directory imports landed is wrong, repair it and verify again."""
    listing = folder.listing()
    bulk_dirs = frozenset(p for p in progress.touched if p in set(plan.new_dirs))
    problems = _problems(plan, folder.layout.content(listing), bulk_dirs)
    if not problems or not all(p in landed or _inside(p, bulk_dirs) for p in problems):
        _raise_problems(problems)
        return listing, ()
    folder.events.warning(
        f"a directory import did not land as planned ({len(problems)} object(s)); "
        "importing those one by one"
    )
    live = folder.layout.content(listing)
    for path in sorted(problems):
        if path in live.objects or path in live.dirs:
            folder.ws.delete(folder.abs(path), recursive=path in live.dirs)
    missing = [p for p in sorted(problems) if p in desired]
    parents = sorted({p.rsplit("/", 1)[0] for p in missing if "/" in p} - set(live.dirs))
    run_parallel(lambda d: folder.ws.mkdirs(folder.abs(d)), parents, folder.workers)
    run_parallel(lambda p: _import(folder, desired[p], content(p)), missing, folder.workers)
    listing = folder.listing()
    _raise_problems(_problems(plan, folder.layout.content(listing), bulk_dirs))
    return listing, tuple(sorted(problems))


def _looked_up(folder: Folder, known: list[RemoteObject], paths: list[str]) -> list[RemoteObject]:
    """``known`` with the written and deleted paths as the workspace reports them now."""
    found = folder.ws.statuses([folder.abs(p) for p in paths])
    return patched(known, folder.layout, {p: found[folder.abs(p)] for p in paths})


def _problems(plan: Plan, live: FolderContent, bulk_dirs: frozenset[str]) -> dict[str, str]:
    """{path: what is wrong} between the plan's end state and the folder."""
    problems: dict[str, str] = {}
    for path, (otype, lang) in sorted(plan.end_state.items()):
        obj = live.objects.get(path)
        if obj is None:
            problems[path] = (
                f"{path} is a DIRECTORY, expected {otype}"
                if path in live.dirs
                else f"{path} is missing"
            )
        elif obj.object_type != otype:
            problems[path] = f"{path} is a {obj.object_type}, expected {otype}"
        elif lang and obj.language and obj.language != lang:
            problems[path] = f"{path} is {obj.language}, expected {lang}"
    for c in plan.deletes:
        if c.path in live.objects or c.path in live.dirs:
            problems[c.path] = f"{c.path} should have been deleted"
    # Inside a folder a directory import created, anything unplanned is that import's.
    wanted_dirs = set(plan.directories)
    for path in [*live.objects, *live.dirs]:
        if _inside(path, bulk_dirs) and path not in plan.end_state and path not in wanted_dirs:
            problems[path] = f"{path} was not planned"
    return problems


def _inside(path: str, folders: frozenset[str]) -> bool:
    return any(path.startswith(f + "/") for f in folders)


def _raise_problems(problems: dict[str, str]) -> None:
    if problems:
        texts = [problems[p] for p in sorted(problems)]
        shown = "; ".join(texts[:5]) + (f" (+{len(texts) - 5} more)" if len(texts) > 5 else "")
        raise VerificationFailed(f"the folder does not match the plan after apply: {shown}")
