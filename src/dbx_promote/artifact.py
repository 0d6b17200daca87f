"""Building, verifying and reading artifacts: one deterministic zip plus its manifest.

An artifact is ``<project>-<version>.zip`` holding ``manifest.json`` at its root and every
object under ``src/<relative path>``. The same commit always builds the same bytes (sorted
entries, fixed timestamps and permissions, canonical manifest JSON), so the zip's sha256,
its **digest**, is the release's identity from Test to Prod.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import subprocess
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbx_promote import __version__
from dbx_promote.bounds import MAX_TEXT, BadDocument, load_json
from dbx_promote.errors import ArtifactError, BuildError
from dbx_promote.layout import tree_problem

if TYPE_CHECKING:
    from dbx_promote.config import Config
from dbx_promote.notebooks import (
    DEFAULT_INCLUDE,
    MAX_OBJECT_SIZE,
    SourceObject,
    discover,
    object_bytes,
)
from dbx_promote.pathchars import hidden_character_problem

__all__ = [
    "CONTENT_DIR",
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "Artifact",
    "BuildOptions",
    "Manifest",
    "ManifestObject",
    "build_artifact",
    "compute_version",
    "open_artifact",
    "verify_artifact",
]

MANIFEST_NAME = "manifest.json"
CONTENT_DIR = "src/"
SCHEMA_VERSION = 1

_KINDS = {"notebook": {"SOURCE", "JUPYTER"}, "file": {"AUTO"}}
_LANGUAGES = {"PYTHON", "SQL", "SCALA", "R"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_TAG_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_LAST_ZIP_SECOND = 4354819199  # 2107-12-31T23:59:59Z
_COMPRESS_LEVEL = 6
_MAX_MANIFEST_SIZE = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ManifestObject:
    """One object of an artifact, as the manifest describes it.

    ``path`` is relative to the source folder (POSIX, with extension); ``workspace_path`` is
    relative to the environment root (notebooks drop the extension, files keep it).
    """

    path: str
    workspace_path: str
    kind: str
    language: str | None
    format: str
    size: int
    sha256: str

    @property
    def entry_name(self) -> str:
        """The name of this object's entry in the zip."""
        return CONTENT_DIR + self.path


@dataclass(frozen=True)
class Manifest:
    """What an artifact holds and where it came from."""

    schema_version: int
    project: str
    version: str
    commit: str | None
    commit_time: str | None
    tool_version: str
    objects: tuple[ManifestObject, ...]

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON-ready data."""
        d = asdict(self)
        d["objects"] = [asdict(o) for o in self.objects]
        return d

    def to_json(self) -> bytes:
        """The canonical JSON bytes stored in the zip."""
        return (
            json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            + "\n"
        ).encode("utf-8")

    @classmethod
    def from_dict(cls, d: Any) -> Manifest:
        """Parse and check a manifest.

        :raises ArtifactError: if the shape is wrong or a path is unsafe.
        """
        if not isinstance(d, Mapping):
            raise ArtifactError("invalid manifest: not a JSON object")
        if d.get("schema_version") != SCHEMA_VERSION:
            raise ArtifactError(
                f"invalid manifest: schema_version {d.get('schema_version')!r} is not "
                f"{SCHEMA_VERSION}; use the dbx-promote version that built it"
            )
        for key in ("project", "version", "tool_version"):
            if not isinstance(d.get(key), str) or not d[key]:
                raise ArtifactError(f"invalid manifest: '{key}' missing or not a string")
        for key in ("commit", "commit_time"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise ArtifactError(f"invalid manifest: '{key}' is not a string")
        _check_names(d)
        raw_objects = d.get("objects")
        if not isinstance(raw_objects, list):
            raise ArtifactError("invalid manifest: 'objects' missing or not a list")
        objects = tuple(_object_from_dict(o, i) for i, o in enumerate(raw_objects))
        paths = [o.path for o in objects]
        if paths != sorted(set(paths)):
            raise ArtifactError("invalid manifest: object paths are duplicated or not sorted")
        workspace_paths = [o.workspace_path for o in objects]
        if len(set(workspace_paths)) != len(workspace_paths):
            raise ArtifactError("invalid manifest: two objects share one workspace path")
        problem = tree_problem(workspace_paths)
        if problem:
            raise ArtifactError(f"invalid manifest: {problem}")
        return cls(
            schema_version=SCHEMA_VERSION,
            project=d["project"],
            version=d["version"],
            commit=d.get("commit"),
            commit_time=d.get("commit_time"),
            tool_version=d["tool_version"],
            objects=objects,
        )


# What the manifest says becomes release file names (project, version), the record and
# the lock: each must be what `build` itself would write.
_MANIFEST_NAMES = {
    "project": (_NAME_RE, "a name of letters, digits and '._+-'"),
    "version": (_NAME_RE, "a version of letters, digits and '._+-'"),
    "tool_version": (_NAME_RE, "a version of letters, digits and '._+-'"),
    "commit": (re.compile(r"^[0-9a-f]{7,64}$"), "a git commit id"),
    "commit_time": (re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"), "a UTC time"),
}
_MAX_NAME = 200


def _check_names(d: Mapping[str, Any]) -> None:
    for key, (pattern, expected) in _MANIFEST_NAMES.items():
        value = d.get(key)
        if value is not None and (len(value) > _MAX_NAME or not pattern.match(value)):
            shown = repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
            raise ArtifactError(
                f"invalid manifest: '{key}' {shown} is not {expected}; "
                "an artifact is what `dbx-promote build` writes: rebuild it"
            )


def _object_from_dict(o: Any, index: int) -> ManifestObject:
    where = f"invalid manifest: object {index}"
    if not isinstance(o, Mapping):
        raise ArtifactError(f"{where} is not a JSON object")
    try:
        obj = ManifestObject(
            path=o["path"],
            workspace_path=o["workspace_path"],
            kind=o["kind"],
            language=o["language"],
            format=o["format"],
            size=o["size"],
            sha256=o["sha256"],
        )
    except KeyError as exc:
        raise ArtifactError(f"{where} has no {exc.args[0]!r}") from None
    for name in ("path", "workspace_path"):
        value = getattr(obj, name)
        reason = _unsafe_name(value) if isinstance(value, str) else "not a string"
        if not reason and len(value) > MAX_TEXT:
            reason = f"is longer than {MAX_TEXT} characters"
        if reason:
            raise ArtifactError(f"{where}: {name} {value!r} {reason}")
    # Deploy trusts workspace_path; tying it to path keeps one object from posing as another.
    expected = posixpath.splitext(obj.path)[0] if obj.kind == "notebook" else obj.path
    if obj.workspace_path != expected:
        raise ArtifactError(f"{where}: workspace_path {obj.workspace_path!r} does not follow path")
    if obj.format not in _KINDS.get(obj.kind, set()):
        raise ArtifactError(f"{where}: kind {obj.kind!r} with format {obj.format!r}")
    if (obj.language not in _LANGUAGES) if obj.kind == "notebook" else (obj.language is not None):
        raise ArtifactError(f"{where}: language {obj.language!r} for a {obj.kind}")
    if not isinstance(obj.size, int) or isinstance(obj.size, bool) or obj.size < 0:
        raise ArtifactError(f"{where}: size {obj.size!r} is not a byte count")
    if not isinstance(obj.sha256, str) or not _SHA_RE.match(obj.sha256):
        raise ArtifactError(f"{where}: sha256 {obj.sha256!r} is not a hex digest")
    return obj


def _unsafe_name(name: str) -> str | None:
    """Why a zip entry or manifest path is unsafe to extract or deploy, else ``None``."""
    if not name:
        return "is empty"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    parts = name.split("/")
    if ".." in parts:
        return "contains '..'"
    if any(p in ("", ".") for p in parts):
        return "has an empty or '.' segment"
    return hidden_character_problem(name)


@dataclass(frozen=True)
class Artifact:
    """A verified artifact on disk: its path, digest and manifest."""

    path: Path
    digest: str
    manifest: Manifest

    @property
    def version(self) -> str:
        """The artifact's version, from its manifest."""
        return self.manifest.version

    @property
    def project(self) -> str:
        """The project name, from its manifest."""
        return self.manifest.project

    def read(self, obj: ManifestObject) -> bytes:
        """The stored bytes of ``obj``, re-checked against the manifest.

        :raises ArtifactError: if the entry is missing or its bytes do not match.
        """
        with self.reader() as read:
            return read(obj)

    @contextmanager
    def reader(self) -> Iterator[Callable[[ManifestObject], bytes]]:
        """A thread-safe ``read(obj)`` over one open handle, closed when the block ends.

        Reopening the archive per object re-reads its central directory every time, which
        is quadratic for large releases; every read is still checked like `read`.
        """
        lock = threading.Lock()
        try:
            zf = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"{self.path.name}: cannot open: {exc}") from exc

        def read(obj: ManifestObject) -> bytes:
            try:
                with lock:
                    data = _read_entry(zf, obj.entry_name, obj.size)
            except (OSError, KeyError, zipfile.BadZipFile) as exc:
                raise ArtifactError(f"{self.path.name}: cannot read {obj.path}: {exc}") from exc
            if len(data) != obj.size or hashlib.sha256(data).hexdigest() != obj.sha256:
                raise ArtifactError(
                    f"{self.path.name}: {obj.path} does not match its manifest hash; "
                    "the artifact was altered after it was built"
                )
            return data

        with zf:
            yield read


def _read_entry(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Read an entry, never more than ``limit + 1`` bytes whatever the zip declares."""
    with zf.open(name) as f:
        return f.read(limit + 1)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _looks_truncated(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def open_artifact(path: str | Path) -> Artifact:
    """Open an artifact after checking its structure, manifest and every object's hash.

    :param path: the ``.zip`` file.
    :raises ArtifactError: with a one-line reason when the file is not a sound artifact.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact file")
    if not zipfile.is_zipfile(path):
        if _looks_truncated(path):
            raise ArtifactError(
                f"{name}: truncated zip (no central directory); rebuild or re-download it"
            )
        raise ArtifactError(f"{name}: not a zip file")
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _verify_zip(zf, name)
    except (zipfile.BadZipFile, zlib.error) as exc:
        raise ArtifactError(f"{name}: corrupt zip: {exc}") from exc
    except NotImplementedError as exc:
        raise ArtifactError(f"{name}: unsupported zip feature: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise ArtifactError(f"{name}: truncated or unreadable zip: {exc}") from exc
    return Artifact(path=path, digest=_file_digest(path), manifest=manifest)


verify_artifact = open_artifact


def _verify_zip(zf: zipfile.ZipFile, name: str) -> Manifest:
    infos = zf.infolist()
    seen: set[str] = set()
    for info in infos:
        entry = info.filename
        reason = _unsafe_name(entry.rstrip("/") if entry.endswith("/") else entry)
        if reason:
            raise ArtifactError(f"{name}: entry {entry!r} {reason}; refusing the artifact")
        if entry in seen:
            raise ArtifactError(f"{name}: duplicate entry {entry!r}; refusing the artifact")
        seen.add(entry)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArtifactError(
                f"{name}: entry {entry!r} is a symbolic link; refusing the artifact"
            )
        if info.flag_bits & 0x1:
            raise ArtifactError(f"{name}: entry {entry!r} is encrypted; refusing the artifact")
        # Only what an entry declares is ever decompressed, so a bomb is an entry that
        # declares more than a build may store; a ratio test would also refuse a notebook
        # of the same size that merely compresses well (one the build itself made).
        limit = _MAX_MANIFEST_SIZE if entry == MANIFEST_NAME else MAX_OBJECT_SIZE
        if info.file_size > limit:
            raise ArtifactError(
                f"{name}: entry {entry!r} declares {info.file_size} bytes from "
                f"{info.compress_size} compressed (zip bomb?); refusing the artifact"
            )
    if MANIFEST_NAME not in seen:
        raise ArtifactError(f"{name}: no {MANIFEST_NAME}; not a dbx-promote artifact")
    raw = _read_entry(zf, MANIFEST_NAME, _MAX_MANIFEST_SIZE)
    try:
        manifest = Manifest.from_dict(load_json(raw))
    except BadDocument as exc:
        raise ArtifactError(f"{name}: invalid manifest: {exc}") from None
    except ArtifactError as exc:
        raise ArtifactError(f"{name}: {exc.message}") from None
    expected = {o.entry_name for o in manifest.objects}
    extra = sorted(seen - expected - {MANIFEST_NAME})
    if extra:
        raise ArtifactError(f"{name}: entry {extra[0]!r} is not in the manifest")
    missing = sorted(expected - seen)
    if missing:
        raise ArtifactError(f"{name}: manifest lists {missing[0]!r} but the zip has no such entry")
    for obj in manifest.objects:
        info = zf.getinfo(obj.entry_name)
        if info.file_size != obj.size:
            raise ArtifactError(
                f"{name}: {obj.path} is {info.file_size} bytes, manifest says {obj.size}"
            )
        h = hashlib.sha256()
        size = 0
        with zf.open(info) as f:
            while chunk := f.read(_CHUNK):
                size += len(chunk)
                if size > obj.size:
                    break
                h.update(chunk)
        if size != obj.size or h.hexdigest() != obj.sha256:
            raise ArtifactError(f"{name}: {obj.path} does not match its manifest sha256")
    return manifest


# --- versioning ------------------------------------------------------------------------------


def _git(repo_dir: Path, *args: str) -> str | None:
    """Run git in ``repo_dir``; its stdout stripped, or ``None`` if git failed."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=repo_dir,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "LC_ALL": "C", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (FileNotFoundError, NotADirectoryError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _check_version(version: str) -> str:
    if not _NAME_RE.match(version):
        raise BuildError(
            f"version {version!r} is not usable in a file name; use letters, digits, '.+-_'"
        )
    return version


def compute_version(
    repo_dir: Path, override: str | None, release: bool
) -> tuple[str, str | None, str | None]:
    """The artifact version, commit and commit time (ISO 8601 UTC) for ``repo_dir``.

    A ``vX.Y.Z`` tag on HEAD gives ``X.Y.Z``; otherwise ``<last tag or 0.0.0>.dev<N>+g<sha>``
    where N counts commits since that tag. Uncommitted changes under ``repo_dir`` add
    ``.dirty`` (``+dirty`` on a tagged version). ``override`` replaces the version but the
    commit is still recorded. Outside git, ``override`` is required.

    :raises BuildError: outside git without ``override``; a dirty tree with ``release``;
        a shallow clone without a tag on HEAD; a version unusable in a file name.
    """
    head = _git(repo_dir, "rev-parse", "--verify", "--quiet", "HEAD")
    if head is None:
        if override is None:
            raise BuildError(
                f"{repo_dir} is not in a git repository with commits; pass --version to build "
                "outside git"
            )
        if release:
            raise BuildError("--release needs a git commit to build from; commit first")
        return _check_version(override), None, None
    seconds = int(_git(repo_dir, "show", "-s", "--format=%ct", "HEAD") or "0")
    commit_time = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    dirty = bool(_git(repo_dir, "status", "--porcelain", "--untracked-files=normal", "--", "."))
    if dirty and release:
        raise BuildError(
            "uncommitted changes in the source folder; --release builds only a clean, committed "
            "tree: commit or stash them"
        )
    if override is not None:
        return _check_version(override), head, commit_time
    tags = (_git(repo_dir, "tag", "--points-at", "HEAD", "--list", "v*") or "").split()
    versions = sorted(
        (tuple(int(x) for x in m.groups()) for t in tags if (m := _TAG_RE.match(t))),
    )
    if versions:
        version = ".".join(str(x) for x in versions[-1])
        return version + ("+dirty" if dirty else ""), head, commit_time
    if _git(repo_dir, "rev-parse", "--is-shallow-repository") == "true":
        raise BuildError(
            "shallow git clone: the last tag and commit count are unknown; fetch full history "
            "(Azure Pipelines: `fetchDepth: 0`) or pass --version"
        )
    described = _git(
        repo_dir, "describe", "--tags", "--long", "--match", "v[0-9]*.[0-9]*.[0-9]*", "HEAD"
    )
    base, count = "0.0.0", _git(repo_dir, "rev-list", "--count", "HEAD") or "0"
    if described:
        tag, n, _sha = described.rsplit("-", 2)
        m = _TAG_RE.match(tag)
        if m:
            base, count = ".".join(m.groups()), n
    short = head[:12]
    version = f"{base}.dev{count}+g{short}" + (".dirty" if dirty else "")
    return version, head, commit_time


# --- building --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildOptions:
    """What to build: the project name, the source folder and the discovery settings."""

    project: str
    source: Path
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = ()
    strip_outputs: bool = True
    allow_files: bool = True
    release: bool = False
    version: str | None = None

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        version: str | None = None,
        strip_outputs: bool | None = None,
        allow_files: bool = True,
        release: bool = False,
    ) -> BuildOptions:
        """The build `dbx-promote.yml` describes; ``strip_outputs=None`` keeps the config's,
        ``allow_files=False`` refuses files even where the config allows them."""
        b = config.build
        return cls(
            project=config.project,
            source=config.source,
            include=b.include,
            exclude=b.exclude,
            strip_outputs=b.strip_outputs if strip_outputs is None else strip_outputs,
            allow_files=b.allow_files and allow_files,
            release=release,
            version=version,
        )


def _zip_date(commit_time: str | None) -> tuple[int, int, int, int, int, int]:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            seconds = int(epoch)
        except ValueError:
            raise BuildError(f"SOURCE_DATE_EPOCH={epoch!r} is not an integer") from None
        if seconds > _LAST_ZIP_SECOND:  # beyond it, the clock functions overflow too
            raise BuildError(
                f"SOURCE_DATE_EPOCH={epoch[:40]!r} is after 2107, the last year a zip can hold"
            )
    elif commit_time is not None:
        seconds = int(
            datetime.strptime(commit_time, "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=timezone.utc)
            .timestamp()
        )
    else:
        return _FIXED_DATE
    t = time.gmtime(max(seconds, 315532800))  # zip cannot hold dates before 1980
    return (min(t.tm_year, 2107), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _zip_info(name: str, date: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=date)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so external_attr means the same on every build machine
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    # ZipInfo has no public compression-level field before Python 3.13.
    info._compresslevel = _COMPRESS_LEVEL  # type: ignore[attr-defined]
    return info


def _manifest_object(obj: SourceObject) -> ManifestObject:
    return ManifestObject(
        path=obj.path,
        workspace_path=obj.workspace_path,
        kind=obj.kind,
        language=obj.language,
        format=obj.format,
        size=obj.size,
        sha256=obj.sha256,
    )


def _write_object(zf: zipfile.ZipFile, info: zipfile.ZipInfo, obj: SourceObject) -> None:
    """Stream one object into the zip, checking it still has the bytes discovery hashed."""
    h = hashlib.sha256()
    with zf.open(info, "w") as dst:
        if obj.strip_outputs:
            data = object_bytes(obj)
            h.update(data)
            dst.write(data)
        else:
            with obj.file.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
    if h.hexdigest() != obj.sha256:
        raise BuildError(f"{obj.path}: changed while the artifact was being built; build again")


def build_artifact(
    options: BuildOptions, out_dir: Path, *, repo_dir: Path | None = None
) -> Artifact:
    """Discover, validate and package ``options.source`` into ``out_dir/<project>-<version>.zip``.

    The zip is written to a temporary file, verified, and only then moved into place, so a
    failed build never leaves an artifact, partial or refused, under the final name.

    :param options: what to build.
    :param out_dir: the folder for the artifact (created if missing).
    :param repo_dir: where to read git state from (default: the source folder); only
        changes under it make the version ``.dirty``.
    :raises BuildError: with every validation problem, or a versioning problem.
    """
    if not _NAME_RE.match(options.project):
        raise BuildError(
            f"project name {options.project!r} is not usable in a file name; "
            "use letters, digits, '.+-_'"
        )
    source = options.source.resolve()
    objects = discover(
        source,
        include=options.include,
        exclude=options.exclude,
        strip_outputs=options.strip_outputs,
        allow_files=options.allow_files,
    )
    version, commit, commit_time = compute_version(
        repo_dir or source, options.version, options.release
    )
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        project=options.project,
        version=version,
        commit=commit,
        commit_time=commit_time,
        tool_version=__version__,
        objects=tuple(_manifest_object(o) for o in objects),
    )
    date = _zip_date(commit_time)
    target = out_dir / f"{options.project}-{version}.zip"
    # Said here, not as the OSError of a mkdir or of renaming a temporary file later.
    if out_dir.is_file() or target.is_dir():
        where, what = (out_dir, "a file") if out_dir.is_file() else (target, "a folder")
        raise BuildError(f"{where} is {what}; remove it or build elsewhere (--out)")
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write_verified(target, manifest, objects, date)


def _write_verified(
    target: Path,
    manifest: Manifest,
    objects: Sequence[SourceObject],
    date: tuple[int, int, int, int, int, int],
) -> Artifact:
    """The zip written to a temporary file beside ``target``, verified, then named."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            # "manifest.json" sorts before "src/...", so entries are in sorted order.
            zf.writestr(_zip_info(MANIFEST_NAME, date), manifest.to_json())
            for obj in objects:
                _write_object(zf, _zip_info(CONTENT_DIR + obj.path, date), obj)
        os.chmod(tmp, 0o644)
        # Verified before it is named: dist/ never holds an artifact that verify refuses.
        built = open_artifact(tmp)
        os.replace(tmp, target)
    except ArtifactError as exc:
        tmp.unlink(missing_ok=True)
        reason = str(exc).replace(tmp.name, target.name)
        raise BuildError(f"the built zip does not verify, so it was not kept: {reason}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return replace(built, path=target)
