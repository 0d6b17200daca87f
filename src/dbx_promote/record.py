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
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from dbx_promote.errors import RecordCorrupt

# The paths live in layout.py; these names stay importable from here for older callers.
from dbx_promote.layout import BACKUPS_DIR as BACKUPS_DIR
from dbx_promote.layout import HISTORY_FILE as HISTORY_FILE
from dbx_promote.layout import LOCK_FILE as LOCK_FILE
from dbx_promote.layout import RECORD_FILE as RECORD_FILE
from dbx_promote.layout import RELEASES_DIR
from dbx_promote.layout import STATE_DIR as STATE_DIR

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
        data = _load(raw, where)
        try:
            objects = {
                str(k): ManagedObject(**{**v, "path": str(k)})
                for k, v in dict(data["objects"]).items()
            }
            releases = tuple(ReleaseRef(**r) for r in data.get("releases", []))
            record = cls(
                project=str(data["project"]),
                env=str(data["env"]),
                version=str(data["version"]),
                digest=str(data["digest"]),
                commit=data.get("commit"),
                commit_time=data.get("commit_time"),
                deployed_at=str(data["deployed_at"]),
                deployed_by=str(data["deployed_by"]),
                kind=str(data.get("kind", "deploy")),
                verified=bool(data["verified"]),
                objects=objects,
                releases=releases,
                directories=tuple(data.get("directories", [])),
                pipeline=data.get("pipeline"),
                skip_requires=bool(data.get("skip_requires", False)),
                environment_source=data.get("environment_source"),
                deploy_id=data.get("deploy_id"),
                lock_left=data.get("lock_left"),
                tests=data.get("tests"),
                bulk_refused=bool(data.get("bulk_refused", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordCorrupt(_corrupt(where, f"missing or bad field {exc}")) from None
        # Paths in the record are joined to the root and written or deleted: one that
        # escapes the root would let whoever can edit this file steer the deploy elsewhere.
        paths = [*record.objects, *record.directories]
        for ref in record.releases:
            if not ref.file.startswith(RELEASES_DIR + "/") or ref.parts < 1:
                raise RecordCorrupt(
                    _corrupt(where, f"release file {ref.file!r} is not in the store")
                )
            paths.append(ref.file)
        for path in paths:
            if not is_safe_relative(path):
                raise RecordCorrupt(_corrupt(where, f"path {path!r} leaves the folder"))
        return record


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


def is_safe_relative(path: str) -> bool:
    """A non-empty relative workspace path that stays inside the folder it is joined to."""
    return (
        isinstance(path, str)
        and bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and all(part not in ("", ".", "..") for part in path.split("/"))
    )


def history_to_json(entries: list[HistoryEntry]) -> bytes:
    data = {"schema_version": RECORD_SCHEMA, "deployments": [asdict(e) for e in entries]}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def history_from_json(raw: bytes, *, where: str) -> list[HistoryEntry]:
    data = _load(raw, where)
    try:
        return [HistoryEntry(**e) for e in data["deployments"]]
    except (KeyError, TypeError) as exc:
        raise RecordCorrupt(_corrupt(where, f"bad entry {exc}")) from None


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

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> Lock:
        data = _load(raw, where)
        data.pop("schema_version", None)
        try:
            return cls(**data)
        except TypeError as exc:
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


def _seconds_since(stamp: str | None, now: datetime | None) -> float:
    now = now or datetime.now(timezone.utc)
    try:
        return (now - parse_time(str(stamp))).total_seconds()
    except (ValueError, TypeError, AttributeError):
        return float("inf")  # an unreadable time counts as stale


def _load(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RecordCorrupt(_corrupt(where, "not valid JSON")) from None
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
