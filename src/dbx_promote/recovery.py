"""After a deploy died: recognise what it wrote, so the next deploy does not take our own
objects for hand edits.

A dead deploy's lock is its intent: the content hash of every object it was writing. An
object under root that changed since the record and now holds exactly that content was
written by the dead deploy; it is planned as ours (no drift, no backup). So is one that
holds exactly the record's own content again: the restore of a deploy that gave up part-way
(restore.py) wrote it back. Anything else that changed stays a hand edit.
"""

from __future__ import annotations

import hashlib

from dbx_promote.layout import FolderContent
from dbx_promote.parallel import run_parallel
from dbx_promote.plan import Adopted, is_drift
from dbx_promote.record import Lock, ManagedObject, Record
from dbx_promote.remote import RemoteObject
from dbx_promote.state import Folder

#: Content hashes already computed in this run, by (path, modified_at).
HashCache = dict[tuple[str, int | None], str]


def candidates(dead: Lock, record: Record | None, live: FolderContent) -> dict[str, set[str]]:
    """Paths the dead deploy or its restore may have written that changed since the
    record, each with the content hashes that make it ours (pure)."""
    recorded = record.objects if record else {}
    out: dict[str, set[str]] = {}
    for path in sorted({*dead.intent, *recorded}):
        obj, rec = live.objects.get(path), recorded.get(path)
        if obj is None or (rec is not None and not is_drift(rec, obj)):
            continue
        out[path] = {h for h in (dead.intent.get(path), rec.sha256 if rec else None) if h}
    return out


def recognise(
    folder: Folder,
    dead: Lock,
    record: Record | None,
    listing: list[RemoteObject],
    cache: HashCache | None = None,
) -> Adopted:
    """The objects and folders ``dead`` wrote, recognised by path and content hash."""
    cache = {} if cache is None else cache
    live = folder.layout.content(listing)
    todo = candidates(dead, record, live)

    def content_hash(path: str) -> tuple[str, str]:
        key = (path, live.objects[path].modified_at)
        if key not in cache:
            data = folder.ws.download(folder.abs(path), jupyter=path in dead.jupyter)
            cache[key] = hashlib.sha256(data).hexdigest()
        return path, cache[key]

    objects = {}
    for path, sha in run_parallel(content_hash, sorted(todo), folder.workers):
        if sha in todo[path]:
            obj = live.objects[path]
            objects[path] = ManagedObject(
                path,
                "notebook" if obj.object_type == "NOTEBOOK" else "file",
                obj.language,
                sha,
                object_id=obj.object_id,
                modified_at=obj.modified_at,
            )
    return Adopted(objects, frozenset(d for d in dead.new_dirs if d in live.dirs))
