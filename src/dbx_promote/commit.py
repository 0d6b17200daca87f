"""The commit: the record is written first — that is the moment the deploy has happened —
then the history and the pruning of old releases, which can only warn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from dbx_promote.config import Environment
from dbx_promote.errors import DbxPromoteError
from dbx_promote.plan import Plan
from dbx_promote.record import (
    HISTORY_LIMIT,
    HistoryEntry,
    ManagedObject,
    Record,
    ReleaseRef,
    pipeline_context,
)
from dbx_promote.releases import ReleaseStore
from dbx_promote.remote import RemoteObject
from dbx_promote.state import Folder
from dbx_promote.target import Target


@dataclass(frozen=True)
class Commit:
    """Who commits, where: the settings every record of this run shares."""

    env: Environment
    user: str
    now: Callable[[], str]
    store: ReleaseStore

    def on(self, folder: Folder) -> Commit:
        """The same commit, written through ``folder`` (e.g. a more patient adapter)."""
        return replace(self, store=ReleaseStore(folder, self.store.part_bytes))

    def entry(
        self, target: Target, kind: str, outcome: str, detail: str = "", at: str | None = None
    ) -> HistoryEntry:
        """A history line about ``target``."""
        return HistoryEntry(
            version=target.version,
            digest=target.digest,
            kind=kind,
            outcome=outcome,
            at=at or self.now(),
            by=self.user,
            commit=target.commit,
            detail=detail,
            pipeline=pipeline_context(),
        )

    def record(
        self,
        target: Target,
        plan: Plan,
        previous: Record | None,
        listing: list[RemoteObject],
        release: ReleaseRef,
        *,
        kind: str,
        skip_requires: bool = False,
        bulk_refused: bool = False,
    ) -> tuple[Record, list[ReleaseRef]]:
        """The record of ``target`` as just applied, and the releases it no longer keeps."""
        present = {self.store.folder.layout.relative(o.path): o for o in listing}
        objects = {}
        for d in target.desired:
            o = present.get(d.path)
            objects[d.path] = ManagedObject(
                path=d.path,
                kind=d.kind,
                language=d.language,
                sha256=d.sha256,
                object_id=o.object_id if o else None,
                modified_at=o.modified_at if o else None,
            )
        older = [r for r in (previous.releases if previous else ()) if r.digest != release.digest]
        releases = [release, *older]
        keep = self.env.keep_releases
        record = Record(
            project=target.project,
            env=self.env.name,
            version=target.version,
            digest=target.digest,
            commit=target.commit,
            commit_time=target.commit_time,
            deployed_at=self.now(),
            deployed_by=self.user,
            kind=kind,
            verified=True,
            objects=objects,
            releases=tuple(releases[:keep]),
            directories=plan.directories,
            pipeline=pipeline_context(),
            skip_requires=skip_requires,
            environment_source=target.environment_source,
            bulk_refused=bulk_refused or bool(previous and previous.bulk_refused),
        )
        return record, releases[keep:]

    def write(
        self,
        record: Record,
        entries: Sequence[HistoryEntry],
        history: list[HistoryEntry],
        prune: list[ReleaseRef],
        after_record: Callable[[], None] | None = None,
    ) -> None:
        """Write ``record`` (the commit point), then history and pruning (warnings only).

        ``after_record`` runs once the record is written (the lock's read-back starts then).
        """
        folder = self.store.folder
        folder.write_record(record)
        if after_record is not None:
            after_record()
        try:
            folder.write_history([*entries, *history][:HISTORY_LIMIT])
        except DbxPromoteError as exc:
            folder.events.warning(f"deployed and recorded, but the history was not updated: {exc}")
            return  # keep old releases: pruning waits for a deploy that records fully
        self.store.prune(prune)
