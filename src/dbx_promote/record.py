"""The documents a deployed folder keeps about itself, under `<root>/.dbx-promote/`.

- `deployment.json`: what is deployed now (version, digest, commit, when, who, where from,
  verified) and, per managed object, the hash we wrote and the `object_id` and
  `modified_at` the workspace gave it (so hand edits show up as drift).
- `history.json`: past deployments, newest first.
- `lock.json`: present only while a deploy runs.
- `releases/*.zip`: the last N artifacts, for rollback and promote.

The state lives in the workspace, not on the CI agent: any machine with read access can
plan, and a lost agent loses nothing.
"""

from __future__ import annotations

import getpass
import json
import re
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from dbx_promote.bounds import MAX_INT, BadDocument, Fields, load_json
from dbx_promote.errors import RecordCorrupt

# The paths live in layout.py; these names stay importable from here for older callers.
from dbx_promote.layout import BACKUPS_DIR as BACKUPS_DIR
from dbx_promote.layout import HISTORY_FILE as HISTORY_FILE
from dbx_promote.layout import LOCK_FILE as LOCK_FILE
from dbx_promote.layout import RECORD_FILE as RECORD_FILE
from dbx_promote.layout import RELEASES_DIR
from dbx_promote.layout import STATE_DIR as STATE_DIR
from dbx_promote.pathchars import hidden_character_problem

RECORD_SCHEMA = 1
HISTORY_LIMIT = 100


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class ManagedObject:
    """One object the tool owns in the folder."""

    path: str  # relative to root
    kind: str  # notebook | file
    language: str | None
    sha256: str
    object_id: int | None = None
    modified_at: int | None = None


# The workspace refuses imports over 10 MB; larger artifacts are stored in parts.
RELEASE_PART_BYTES = 8 * 1024 * 1024
# At most this many parts (8 GiB): a record may not ask for more files than that.
MAX_RELEASE_PARTS = 1024
# The generated `_environment` notebook, as the record keeps it, is at most this long.
MAX_SOURCE_CHARS = 10 * 1024 * 1024
MAX_DETAIL_CHARS = 64 * 1024  # a history line's detail (a failure's message, a summary)
MAX_PID = 2**31 - 1
_KIND_RE = re.compile(r"^(notebook|file)$")
_LANGUAGE_RE = re.compile(r"^(PYTHON|SQL|SCALA|R)$")


@dataclass(frozen=True)
class ReleaseRef:
    """A stored artifact in `releases/`: one file, or ``parts`` files `<file>.partNNN`."""

    version: str
    digest: str
    file: str  # relative to root
    parts: int = 1

    @property
    def files(self) -> list[str]:
        """Every workspace file (relative to root) that holds this release."""
        if self.parts <= 1:
            return [self.file]
        return [f"{self.file}.part{i:03d}" for i in range(self.parts)]


@dataclass(frozen=True)
class Record:
    """`deployment.json`: the folder's current release."""

    project: str
    env: str
    version: str
    digest: str
    commit: str | None
    deployed_at: str
    deployed_by: str
    kind: str  # deploy | promote | rollback | restore
    verified: bool
    objects: dict[str, ManagedObject]
    releases: tuple[ReleaseRef, ...] = ()
    directories: tuple[str, ...] = ()
    pipeline: dict[str, str] | None = None
    skip_requires: bool = False
    commit_time: str | None = None
    # The generated `_environment` notebook as deployed, so a restore puts back exactly it.
    environment_source: str | None = None
    # The deploy that wrote this record (its lock carries the same id).
    deploy_id: str | None = None
    # The id of a lock this deploy could not remove: the next deploy removes it.
    lock_left: str | None = None
    # The outcome of the environment's tests against this release (testresults.SuiteResult
    # as a dict); None until they ran. A new deploy starts without one.
    tests: dict[str, Any] | None = None
    # This workspace refused a directory import once: later deploys import one by one.
    bulk_refused: bool = False
    # The owner (project, env) this deploy took the folder from with --adopt.
    adopted_from: dict[str, str] | None = None

    @property
    def release(self) -> ReleaseRef | None:
        for ref in self.releases:
            if ref.digest == self.digest:
                return ref
        return None

    def to_json(self) -> bytes:
        data = asdict(self)
        data["schema_version"] = RECORD_SCHEMA
        data["objects"] = {k: asdict(v) for k, v in sorted(self.objects.items())}
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> Record:
        try:
            record = _record_from(Fields(_load(raw, where)))
        except BadDocument as exc:
            raise RecordCorrupt(_corrupt(where, str(exc))) from None
        # Paths in the record are joined to the root and written or deleted: one that
        # escapes the root would let whoever can edit this file steer the deploy elsewhere.
        paths = [*record.objects, *record.directories]
        for ref in record.releases:
            if not ref.file.startswith(RELEASES_DIR + "/"):
                raise RecordCorrupt(
                    _corrupt(where, f"release file {ref.file!r} is not in the store")
                )
            paths.append(ref.file)
        for path in paths:
            if problem := relative_path_problem(path):
                raise RecordCorrupt(_corrupt(where, f"path {path!r} {problem}"))
        return record


def _record_from(f: Fields) -> Record:
    """A record from its JSON object, every field's type and range checked (bounds.py)."""
    objects = Fields(f.mapping("objects"), "objects.")
    return Record(
        project=f.text("project"),
        env=f.text("env"),
        version=f.text("version"),
        digest=f.digest("digest"),
        commit=f.text("commit", None),
        commit_time=f.text("commit_time", None),
        deployed_at=f.text("deployed_at"),
        deployed_by=f.text("deployed_by"),
        kind=f.text("kind", "deploy"),
        verified=f.flag("verified"),
        objects={str(k): _object_from(str(k), objects.child(k)) for k in objects.data},
        releases=tuple(_release_from(r) for r in f.children("releases", [])),
        directories=tuple(f.texts("directories", [])),
        pipeline=f.mapping("pipeline", None),
        skip_requires=f.flag("skip_requires", False),
        environment_source=f.text("environment_source", None, limit=MAX_SOURCE_CHARS),
        deploy_id=f.text("deploy_id", None),
        lock_left=f.text("lock_left", None),
        tests=f.mapping("tests", None),
        bulk_refused=f.flag("bulk_refused", False),
        adopted_from=f.mapping("adopted_from", None),
    )


def _object_from(path: str, f: Fields) -> ManagedObject:
    return ManagedObject(
        path=path,
        kind=f.text("kind", pattern=_KIND_RE),
        language=f.text("language", None, pattern=_LANGUAGE_RE),
        sha256=f.sha256("sha256"),
        object_id=f.number("object_id", 0, MAX_INT, None),
        modified_at=f.number("modified_at", 0, MAX_INT, None),
    )


def _release_from(f: Fields) -> ReleaseRef:
    return ReleaseRef(
        version=f.text("version"),
        digest=f.digest("digest"),
        file=f.text("file"),
        # A loop bound: each part is a file name and a download.
        parts=f.number("parts", 1, MAX_RELEASE_PARTS, 1),
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One line of `history.json`."""

    version: str
    digest: str
    kind: str
    outcome: str  # succeeded | failed
    at: str
    by: str
    commit: str | None = None
    detail: str = ""
    pipeline: dict[str, str] | None = None


def relative_path_problem(path: str) -> str | None:
    """Why ``path`` is not a relative workspace path that stays inside the folder it is
    joined to and reads back as itself (the manifest's rule, `pathchars`), else ``None``."""
    if (
        not isinstance(path, str)
        or not path
        or path.startswith("/")
        or "\\" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        return "leaves the folder"
    return hidden_character_problem(path)


def history_to_json(entries: list[HistoryEntry]) -> bytes:
    data = {"schema_version": RECORD_SCHEMA, "deployments": [asdict(e) for e in entries]}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def history_from_json(raw: bytes, *, where: str) -> list[HistoryEntry]:
    try:
        return [_entry_from(e) for e in Fields(_load(raw, where)).children("deployments")]
    except BadDocument as exc:
        raise RecordCorrupt(_corrupt(where, str(exc))) from None


def _entry_from(f: Fields) -> HistoryEntry:
    f.unknown({x.name for x in fields(HistoryEntry)})
    return HistoryEntry(
        version=f.text("version"),
        digest=f.text("digest"),
        kind=f.text("kind"),
        outcome=f.text("outcome"),
        at=f.text("at"),
        by=f.text("by"),
        commit=f.text("commit", None),
        detail=f.text("detail", "", limit=MAX_DETAIL_CHARS),
        pipeline=f.mapping("pipeline", None),
    )


@dataclass(frozen=True)
class Lock:
    """`lock.json`: which deploy holds the folder, who runs it, and what it is doing.

    While the deploy runs, ``heartbeat_at`` is refreshed; after it died the lock is its
    intent: from which release to which, and the content hash of every object it was
    writing (``intent``), so the next deploy recognises those objects as its own.
    """

    holder: str
    started_at: str
    host: str
    pid: int
    version: str  # the release being deployed ("to")
    digest: str
    run_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    deploy_id: str = ""
    user: str = ""  # the operating-system user of the process
    heartbeat_at: str | None = None
    from_version: str | None = None
    from_digest: str | None = None
    intent: dict[str, str] = field(default_factory=dict)  # path -> sha256 being written
    jupyter: list[str] = field(default_factory=list)  # intent paths exported as .ipynb
    new_dirs: list[str] = field(default_factory=list)  # folders this deploy creates
    # Which machine and pid namespace ``pid`` belongs to (lock.host_identity): a hostname
    # alone is shared by containers, whose pids mean nothing to each other. "" unknown.
    host_id: str = ""
    # Why its deploy gave up and left it as the intent (its restore failed); "" while it
    # runs or after it died. A lock given up like this is taken over by the next deploy.
    abandoned: str = ""
    # Whose folder it becomes: a first deploy that died has no record to say so.
    # Empty in locks written before they named it.
    project: str = ""
    env: str = ""

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> Lock:
        data = _load(raw, where)
        data.pop("schema_version", None)
        try:
            return _lock_from(Fields(data))
        except BadDocument as exc:
            raise RecordCorrupt(_corrupt(where, str(exc))) from None

    def age_seconds(self, now: datetime | None = None) -> float:
        """Seconds since the deploy took the lock."""
        return _seconds_since(self.started_at, now)

    def heartbeat_age_seconds(self, now: datetime | None = None) -> float:
        """Seconds since the holder last showed it was alive (its start, before a beat)."""
        return _seconds_since(self.heartbeat_at or self.started_at, now)

    def describe(self) -> str:
        run = f", run {self.run_url}" if self.run_url else ""
        pid = f" (pid {self.pid})" if self.pid else ""
        return (
            f"{self.holder} on {self.host}{pid} since {self.started_at} "
            f"(deploying {self.version}{run})"
        )


def _lock_from(f: Fields) -> Lock:
    f.unknown({x.name for x in fields(Lock)})
    intent = f.mapping("intent", {})
    intents = Fields(intent, "intent.")
    paths = [*intent, *f.texts("jupyter", []), *f.texts("new_dirs", [])]
    for path in paths:
        if problem := relative_path_problem(path):
            raise BadDocument(f"path {path!r} {problem}")
    return Lock(
        holder=f.text("holder"),
        started_at=f.text("started_at"),
        host=f.text("host"),
        # os.kill takes it on this host: no group (0, negative) and no overflow.
        pid=f.number("pid", 0, MAX_PID),
        version=f.text("version"),
        digest=f.text("digest"),
        run_url=f.text("run_url", None),
        extra=f.mapping("extra", {}),
        deploy_id=f.text("deploy_id", ""),
        user=f.text("user", ""),
        heartbeat_at=f.text("heartbeat_at", None),
        from_version=f.text("from_version", None),
        from_digest=f.text("from_digest", None),
        intent={str(p): intents.sha256(p) for p in intent},
        jupyter=f.texts("jupyter", []),
        new_dirs=f.texts("new_dirs", []),
        host_id=f.text("host_id", ""),
        abandoned=f.text("abandoned", ""),
        project=f.text("project", ""),
        env=f.text("env", ""),
    )


def _seconds_since(stamp: str | None, now: datetime | None) -> float:
    now = now or datetime.now(timezone.utc)
    try:
        return (now - parse_time(str(stamp))).total_seconds()
    except (ValueError, TypeError, AttributeError):
        return float("inf")  # an unreadable time counts as stale


def _load(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = load_json(raw)
    except BadDocument as exc:
        raise RecordCorrupt(_corrupt(where, str(exc))) from None
    if not isinstance(data, dict):
        raise RecordCorrupt(_corrupt(where, "not a JSON object"))
    version = data.get("schema_version", RECORD_SCHEMA)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordCorrupt(_corrupt(where, "schema_version is not a number"))
    if version > RECORD_SCHEMA:
        raise RecordCorrupt(
            f"{where} was written by a newer dbx-promote (schema "
            f"{data.get('schema_version')}); upgrade dbx-promote"
        )
    return data


def _corrupt(where: str, why: str) -> str:
    return (
        f"{where} is corrupt ({why}); fix or delete it in the workspace "
        "(the next deploy then rebuilds it, treating existing objects as unrecorded)"
    )


def pipeline_context(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """The CI run that is deploying (Azure Pipelines, GitHub Actions), if any."""
    from dbx_promote.ci import detect

    return detect(env).run_context()


def local_identity() -> tuple[str, str]:
    """(user, host) of this process, for the lock; never fails."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return user, socket.gethostname()
