"""Compensation: put the folder back after a deploy failed part-way.

The failed deploy says what it sent (`FailedDeploy.unknown`: paths whose content is now
unknown, because a write may or may not have landed) and what it had backed up; the
`RestoreTarget` says where to go back to. Only what was sent is undone, and what was
backed up and then changed is put back as it was.

A restore retries a throttled or failing workspace for `restore_budget_minutes`, honouring
Retry-After. If it still cannot finish, it says so (`Restored.done` is False) and the
deploy leaves its lock as the intent (deploy.py): the folder is then reported interrupted,
exactly like after a crash, and the next deploy converges (recovery.py).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dbx_promote.apply import ApplyFailed, apply_plan
from dbx_promote.backups import BackupSet
from dbx_promote.commit import Commit
from dbx_promote.errors import DbxPromoteError
from dbx_promote.events import one_line
from dbx_promote.layout import Layout
from dbx_promote.plan import (
    CREATE,
    DELETE,
    UNCHANGED,
    UPDATE,
    Change,
    DesiredObject,
    Plan,
    PlanHead,
    assemble_plan,
    fingerprint,
    needs_replace,
)
from dbx_promote.record import HistoryEntry, ManagedObject, Record, ReleaseRef
from dbx_promote.remote import RemoteObject
from dbx_promote.state import Folder
from dbx_promote.target import Target, target_from_artifact


@dataclass(frozen=True)
class ContentUnknown:
    """A path the failed deploy sent a write or delete for: whether it landed is unknown."""

    path: str


@dataclass(frozen=True)
class BackToRelease:
    """The previous release is in the store: make the folder hold exactly it again."""

    record: Record
    release: ReleaseRef


@dataclass(frozen=True)
class BackToNothing:
    """No release to go back to: remove what the failed deploy created, keep the rest."""

    record: Record | None


RestoreTarget = BackToRelease | BackToNothing


@dataclass(frozen=True)
class Restored:
    """What a restore did, in a sentence; ``done`` is False when it gave up part-way."""

    text: str
    done: bool = True


def restore_target(previous: Record | None) -> RestoreTarget:
    """Where a failed deploy goes back to, given the record it started from."""
    if previous is not None and previous.release is not None:
        return BackToRelease(previous, previous.release)
    return BackToNothing(previous)


@dataclass(frozen=True)
class FailedDeploy:
    """What a failed deploy leaves for its restore to undo."""

    target: Target
    kind: str
    cause: BaseException
    touched: frozenset[str]
    new_dirs: tuple[str, ...]
    backups: BackupSet
    history: list[HistoryEntry]

    @property
    def unknown(self) -> frozenset[ContentUnknown]:
        """Paths it changed that no backup covers: they are rewritten or removed."""
        return frozenset(ContentUnknown(p) for p in self.touched if p not in self.backups.copies)


def restore(
    folder: Folder, commit: Commit, failed: FailedDeploy, back_to: RestoreTarget
) -> Restored:
    """Put the folder back on ``back_to``; says what happened, or that it gave up."""
    folder.events.phase("restoring the previous release")
    folder.events.warning(f"deploy failed ({one_line(failed.cause)}); restoring")
    # The restore is the last line of defence: it waits out throttling for its own
    # budget, however many attempts that takes, not the deploy's few.
    budget = commit.env.restore_budget_minutes
    patient = folder.with_workspace(folder.ws.patient(budget * 60))
    commit = commit.on(patient)
    failed_entry = commit.entry(failed.target, failed.kind, "failed", one_line(failed.cause))
    try:
        with _signals_deferred() as signals:
            _undo_bulk_folders(patient, failed)
            if isinstance(back_to, BackToRelease):
                done = _back_to_release(patient, commit, failed, back_to, failed_entry)
            else:
                done = _back_to_nothing(patient, failed, back_to, failed_entry)
            put_back = failed.backups.put_back(patient, failed.touched)
        if put_back:
            done += f"; put back {put_back} object(s) it had overwritten"
        if signals:
            done += " (further interrupts were held off until the restore finished)"
        return Restored(done)
    except (DbxPromoteError, OSError, ApplyFailed) as exc:
        cause = exc.cause if isinstance(exc, ApplyFailed) else exc
        if not isinstance(cause, (DbxPromoteError, OSError)):
            raise cause from None
        return Restored(
            f"restoring the previous release ALSO failed ({one_line(cause)}; "
            f"restore_budget_minutes: {budget:g})",
            done=False,
        )


def _undo_bulk_folders(folder: Folder, failed: FailedDeploy) -> None:
    """A new folder in ``touched`` was created by one directory import (apply.py): nothing
    was in it before the failed deploy, so one recursive delete undoes it."""
    new = set(failed.new_dirs)
    done: list[str] = []
    for d in sorted(p for p in failed.touched if p in new):
        if not any(d.startswith(x + "/") for x in done):
            folder.ws.delete(folder.abs(d), recursive=True)
            done.append(d)


def _back_to_release(
    folder: Folder,
    commit: Commit,
    failed: FailedDeploy,
    back_to: BackToRelease,
    failed_entry: HistoryEntry,
) -> str:
    previous = back_to.record
    with commit.store.fetch(back_to.release) as artifact:
        old = target_from_artifact(
            artifact, commit.env, commit.user, environment_source=previous.environment_source
        )
        plan = plan_restore(
            old.desired, failed.unknown, failed.new_dirs, back_to, folder.listing(), folder.layout
        )
        with old.content() as content:
            applied = apply_plan(folder, old.desired, content, plan)
        record, prune = commit.record(
            old, plan, previous, applied.listing, back_to.release, kind="restore"
        )
        detail = f"restored after the failed deploy of {failed.target.version}"
        entry = commit.entry(old, "restore", "succeeded", detail, at=record.deployed_at)
        # The failure came first; newest first, the restore is on top.
        commit.write(record, [entry, failed_entry], failed.history, prune)
    return f"restored the previous release {previous.version}"


def _back_to_nothing(
    folder: Folder, failed: FailedDeploy, back_to: BackToNothing, failed_entry: HistoryEntry
) -> str:
    plan = plan_restore(
        (), failed.unknown, failed.new_dirs, back_to, folder.listing(), folder.layout
    )
    apply_plan(folder, (), _no_content, plan)
    try:
        folder.write_history([failed_entry, *folder.read_history_or_new()])
    except DbxPromoteError as exc:
        folder.events.warning(f"could not write history: {exc}")
    if back_to.record is None:
        return "removed what it had created (there was no previous release)"
    return (
        "removed what it had created; the previous release is not in the release "
        "store, so objects it updated keep their new content"
    )


def _no_content(path: str) -> bytes:
    raise AssertionError(f"a restore to nothing writes no object ({path})")


def plan_restore(
    desired: tuple[DesiredObject, ...],
    unknown: frozenset[ContentUnknown],
    new_dirs: tuple[str, ...],
    back_to: RestoreTarget,
    listing: list[RemoteObject],
    layout: Layout,
) -> Plan:
    """The rows that undo ``failed``: pure, from one listing.

    Untouched objects are left as they are; each `ContentUnknown` path is rewritten with
    the release's content, or deleted when the release does not hold it (with no release,
    only what the failed deploy created is deleted).
    """
    live = layout.content(listing)
    sent = {u.path for u in unknown}
    recorded: dict[str, ManagedObject] = dict(back_to.record.objects) if back_to.record else {}
    wanted = {d.path: d for d in desired}
    changes = [
        _restore_row(d, live.objects.get(d.path), d.path in sent, d.path in recorded)
        for path, d in sorted(wanted.items())
        if path not in live.dirs
    ]
    # What the failed deploy may have created: not in the release (or not recorded at all).
    keep = wanted if isinstance(back_to, BackToRelease) else recorded
    for path in sorted(sent - keep.keys()):
        obj = live.objects.get(path)
        if obj is not None:
            changes.append(
                Change(DELETE, path, _kind(obj), obj.language, "written by the failed deploy")
            )
    candidates = set(new_dirs)
    if isinstance(back_to, BackToRelease):
        candidates |= set(back_to.record.directories)
    head = PlanHead(
        env=back_to.record.env if back_to.record else "",
        root=layout.root,
        version=back_to.record.version if back_to.record else "none",
        digest=back_to.record.digest if back_to.record else "none",
        record=back_to.record,
        fingerprint=fingerprint(listing, back_to.record),
    )
    return assemble_plan(
        head,
        changes,
        wanted,
        live,
        candidate_rmdirs=candidates,
        owned={**recorded, **dict.fromkeys(sent)},
        end_state=isinstance(back_to, BackToRelease),
    )


def _restore_row(
    d: DesiredObject, live: RemoteObject | None, unknown: bool, recorded: bool
) -> Change:
    if live is None:
        return Change(CREATE, d.path, d.kind, d.language, "removed by the failed deploy")
    if needs_replace(d, live):
        return Change(
            UPDATE, d.path, d.kind, d.language, "type changed by the failed deploy", replace=True
        )
    if unknown:
        return Change(UPDATE, d.path, d.kind, d.language, "written by the failed deploy")
    if not recorded:
        return Change(UPDATE, d.path, d.kind, d.language, "not in the record")
    return Change(UNCHANGED, d.path, d.kind, d.language)


def _kind(obj: RemoteObject) -> str:
    return "notebook" if obj.object_type == "NOTEBOOK" else "file"


@contextmanager
def _signals_deferred() -> Iterator[list[int]]:
    """Hold off SIGINT/SIGTERM while a restore runs (main thread only).

    A cancelled pipeline sends SIGTERM soon after SIGINT; a second signal must not stop
    the restore that the first one started, or the folder is left mixed.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
