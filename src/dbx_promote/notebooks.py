"""Discovering and validating the notebooks and files that go into an artifact.

Discovery walks the ``source`` folder and classifies every file:

- a ``.py``, ``.sql``, ``.scala``, ``.r`` or ``.R`` file whose first line is the Databricks
  header for its language is a **source notebook**; its workspace path drops the extension;
- a ``.ipynb`` file is a **Jupyter notebook**, validated with ``nbformat`` (schema-valid v4);
  outputs and execution counts are stripped unless asked to keep them;
- anything else is a **workspace file** kept at its path with extension (or refused when
  files are not allowed).

Validation collects every problem of a build (credentials, invalid notebooks, collisions,
oversized files, paths the workspace cannot hold) and raises one `BuildError` listing them
all, so a build is fixed in one round instead of one problem per run.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import nbformat.validator

from dbx_promote.errors import BuildError
from dbx_promote.layout import ENVIRONMENT_NOTEBOOK
from dbx_promote.pathchars import hidden_character_problem

__all__ = [
    "ALLOW_SECRET_MARKER",
    "DEFAULT_INCLUDE",
    "MAX_NOTEBOOK_READ",
    "MAX_OBJECT_SIZE",
    "RESERVED_WORKSPACE_PATHS",
    "SourceObject",
    "discover",
    "glob_match",
    "notebook_header_language",
    "object_bytes",
    "scan_credentials",
    "strip_notebook",
    "workspace_path_problem",
]

#: The workspace import API refuses content above 10 MB.
MAX_OBJECT_SIZE = 10 * 1024 * 1024
#: An .ipynb is judged by what is stored: without its outputs when they are stripped.
#: It is read (and parsed) whole to strip them, so what is read at all is bounded too.
MAX_NOTEBOOK_READ = 256 * 1024 * 1024

#: A line holding this text is never reported by the credential scan.
ALLOW_SECRET_MARKER = "dbx-promote: allow-secret"

DEFAULT_INCLUDE: tuple[str, ...] = ("**/*",)

#: Workspace paths that dbx-promote itself writes at the environment root.
RESERVED_WORKSPACE_PATHS = frozenset({ENVIRONMENT_NOTEBOOK})

#: Folders never packaged, whatever the globs say (hidden names are skipped as well).
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".ipynb_checkpoints"})

# Extension -> (language, first line that makes the file a notebook).
_SOURCE_HEADERS: dict[str, tuple[str, str]] = {
    ".py": ("PYTHON", "# Databricks notebook source"),
    ".sql": ("SQL", "-- Databricks notebook source"),
    ".scala": ("SCALA", "// Databricks notebook source"),
    ".r": ("R", "# Databricks notebook source"),
    ".R": ("R", "# Databricks notebook source"),
}

_KERNEL_LANGUAGES = {"python": "PYTHON", "sql": "SQL", "scala": "SCALA", "r": "R"}

# A workspace object name: printable, no backslash; checked per path segment.
_MAX_SEGMENT_BYTES = 255
_MAX_WORKSPACE_PATH = 1024

# (what, substrings of which one must occur in the lower-cased text, pattern). The cheap
# substring test skips the regular expression for almost every file.
_CREDENTIAL_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (
        "Databricks personal access token",
        ("dapi",),
        re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b"),
    ),
    (
        "Azure storage account key",
        ("==",),
        re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])"),
    ),
    (
        "Azure SAS signature",
        ("sig=",),
        re.compile(r"(?i)(?:[?&]|\b)sig=[A-Za-z0-9%+/]{40,}(?:%3D|=){0,2}"),
    ),
    (
        "Azure AD client secret",
        ("q~",),
        re.compile(r"(?<![A-Za-z0-9_~.])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    ),
    ("AWS access key id", ("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    (
        "private key block",
        ("private key",),
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    ),
    (
        "password literal",
        ("password", "passwd", "pwd", "client_secret"),
        re.compile(
            r"""(?ix)
            (?:\b(?:password|passwd|pwd|client_secret)\b["']?[ \t]*[:=][ \t]*["'][^"'\s]+["'])
            | (?:\.option\([ \t]*["'](?:password|client_secret)["'][ \t]*,[ \t]*["'][^"'\s]+["'])
            """
        ),
    ),
)


@dataclass(frozen=True)
class SourceObject:
    """One discovered object, with the bytes the artifact will store described by hash.

    ``path`` is relative to the source folder (POSIX, with extension); ``file`` is the file
    on disk. ``strip_outputs`` says whether the stored bytes are the notebook with outputs
    removed (``.ipynb`` only); `object_bytes` produces exactly the bytes hashed here.
    """

    path: str
    workspace_path: str
    kind: str
    language: str | None
    format: str
    size: int
    sha256: str
    file: Path
    strip_outputs: bool = False


def glob_match(path: str, pattern: str) -> bool:
    """Whether a relative POSIX ``path`` matches a glob ``pattern``.

    ``*`` and ``?`` stay inside one path segment, ``**`` spans any number of segments, and a
    pattern without ``/`` matches the file name at any depth (as in ``.gitignore``).
    """
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    return _glob_regex(pattern).fullmatch(path) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def notebook_header_language(name: str, first_line: bytes) -> str | None:
    """The notebook language of a file named ``name`` whose first line is ``first_line``.

    Returns ``None`` when the extension has no Databricks header or the line is not it.
    """
    suffix = Path(name).suffix
    entry = _SOURCE_HEADERS.get(suffix)
    if entry is None:
        return None
    language, header = entry
    line = first_line.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n").rstrip()
    return language if line == header.encode() else None


def scan_credentials(data: bytes) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, what)`` for every line of ``data`` that looks like a credential.

    Lines holding `ALLOW_SECRET_MARKER` are skipped: that is the escape hatch for false
    positives (a test fixture, a documented example key). One finding per line, in order.
    """
    text = data.decode("utf-8", errors="replace")
    # Each pattern runs once over the whole text (no pattern crosses a newline); this is
    # several times faster than running every pattern on every line.
    found: dict[int, tuple[int, str]] = {}
    starts: list[int] | None = None
    lowered = text.lower()
    for rank, (what, hints, pattern) in enumerate(_CREDENTIAL_PATTERNS):
        if not any(hint in lowered for hint in hints):
            continue
        for match in pattern.finditer(text):
            if starts is None:
                starts = [0] + [m.end() for m in re.finditer("\n", text)]
            number = bisect.bisect_right(starts, match.start())
            if number not in found or found[number][0] > rank:
                found[number] = (rank, what)
    if not found:
        return
    lines = text.split("\n")
    for number in sorted(found):
        if ALLOW_SECRET_MARKER not in lines[number - 1]:
            yield number, found[number][1]


def workspace_path_problem(workspace_path: str) -> str | None:
    """Why the workspace cannot hold an object at ``workspace_path``, or ``None`` if it can."""
    if len(workspace_path) > _MAX_WORKSPACE_PATH:
        return f"path longer than {_MAX_WORKSPACE_PATH} characters"
    if workspace_path in RESERVED_WORKSPACE_PATHS:
        return f"'{workspace_path}' is reserved for the generated environment notebook; rename it"
    for segment in workspace_path.split("/"):
        if segment in ("", ".", ".."):
            return "empty, '.' or '..' path segment"
        if hidden := hidden_character_problem(segment):
            return f"name {hidden}"
        if "\\" in segment:
            return "backslash in the name"
        if segment != segment.strip():
            return "name starts or ends with whitespace"
        if len(segment.encode()) > _MAX_SEGMENT_BYTES:
            return f"name longer than {_MAX_SEGMENT_BYTES} bytes"
    return None


def strip_notebook(nb: Any) -> None:
    """Clear outputs and execution counts of every code cell of ``nb``, in place."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None


def _read_notebook(data: bytes) -> tuple[Any, str | None]:
    """Parse and schema-check a ``.ipynb``; return ``(notebook, problem)``."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "invalid notebook: not UTF-8"
    except json.JSONDecodeError as exc:
        return None, f"{exc.lineno}: invalid notebook: not JSON ({exc.msg})"
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        found = raw.get("nbformat") if isinstance(raw, dict) else None
        return None, f"invalid notebook: nbformat {found!r}, expected 4; re-save it in Jupyter"
    nb = nbformat.from_dict(raw)
    # iter_validate only reports; nbformat.validate would "repair" by adding random cell
    # ids, which would make the build irreproducible.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        errors = list(nbformat.validator.iter_validate(nb))
    if errors:
        first = str(errors[0].message).splitlines()[0]
        return None, f"invalid notebook: {first}"
    return nb, None


def _notebook_language(nb: Any) -> str | None:
    meta = nb.get("metadata", {})
    name = (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get(
        "name"
    )
    if not name:
        return "PYTHON"  # Jupyter's default kernel; Databricks imports it as Python
    return _KERNEL_LANGUAGES.get(str(name).lower())


def _write_notebook(nb: Any) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text: str = nbformat.writes(nb, version=4)
    return (text + "\n").encode("utf-8")


def object_bytes(obj: SourceObject) -> bytes:
    """The exact bytes the artifact stores for ``obj`` (stripped, for ``.ipynb``)."""
    data = obj.file.read_bytes()
    if obj.format == "JUPYTER" and obj.strip_outputs:
        nb, problem = _read_notebook(data)
        if nb is None:
            raise BuildError(f"{obj.path}: {problem}", problems=[f"{obj.path}: {problem}"])
        strip_notebook(nb)
        return _write_notebook(nb)
    return data


def _walk(source: Path, rel: str = "") -> Iterator[tuple[str, Path]]:
    """Yield ``(relative POSIX path, path)`` of every entry below ``source``, sorted."""
    folder = source / rel if rel else source
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith(".") or name in SKIPPED_DIRS:
            continue
        relpath = f"{rel}/{name}" if rel else name
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(source, relpath)
        else:
            yield relpath, entry


def _selected(relpath: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    return any(glob_match(relpath, p) for p in include) and not any(
        glob_match(relpath, p) for p in exclude
    )


def _classify(
    relpath: str, file: Path, data: bytes, strip_outputs: bool, allow_files: bool
) -> tuple[SourceObject | None, list[str]]:
    problems: list[str] = []
    suffix = Path(relpath).suffix
    stored = data
    if suffix == ".ipynb":
        nb, problem = _read_notebook(data)
        if nb is None:
            sep = ":" if problem and problem[0].isdigit() else ": "
            return None, [f"{relpath}{sep}{problem}"]
        language = _notebook_language(nb)
        if language is None:
            kernel = nb.metadata.get("kernelspec", {}).get("language")
            return None, [f"{relpath}: unsupported kernel language {kernel!r}"]
        if strip_outputs:
            strip_notebook(nb)
            stored = _write_notebook(nb)
        kind, fmt, workspace_path = "notebook", "JUPYTER", relpath[: -len(suffix)]
    else:
        first_line = data.split(b"\n", 1)[0]
        language = notebook_header_language(relpath, first_line)
        if language is not None:
            kind, fmt, workspace_path = "notebook", "SOURCE", relpath[: -len(suffix)]
        elif not allow_files:
            return None, [
                f"{relpath}: not a notebook (no Databricks header) and workspace files are "
                "not allowed; add the header, exclude it, or allow files"
            ]
        else:
            kind, fmt, workspace_path = "file", "AUTO", relpath
    problem = workspace_path_problem(workspace_path)
    if problem:
        problems.append(f"{relpath}: the workspace cannot hold this path: {problem}")
    if len(stored) > MAX_OBJECT_SIZE:
        problems.append(
            _too_large(relpath, len(stored), MAX_OBJECT_SIZE, stripped=stored is not data)
        )
    obj = SourceObject(
        path=relpath,
        workspace_path=workspace_path,
        kind=kind,
        language=language,
        format=fmt,
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        file=file,
        strip_outputs=strip_outputs and fmt == "JUPYTER",
    )
    return obj, problems


def _read_limit(relpath: str, strip_outputs: bool) -> int:
    stripped = strip_outputs and relpath.endswith(".ipynb")
    return MAX_NOTEBOOK_READ if stripped else MAX_OBJECT_SIZE


def _too_large(relpath: str, size: int, limit: int, *, stripped: bool = False) -> str:
    if limit == MAX_NOTEBOOK_READ:
        return f"{relpath}: {size} bytes, more than {limit} bytes to read and strip"
    what = " without its outputs" if stripped else ""
    return f"{relpath}: {size} bytes{what}, over the workspace's 10 MB import limit"


def _collisions(objects: Iterable[SourceObject]) -> list[str]:
    problems: list[str] = []
    by_path: dict[str, list[str]] = {}
    for obj in objects:
        by_path.setdefault(obj.workspace_path, []).append(obj.path)
    for workspace_path, sources in sorted(by_path.items()):
        if len(sources) > 1:
            problems.append(
                f"{', '.join(sorted(sources))}: all map to workspace path '{workspace_path}'; "
                "rename all but one"
            )
    folders = {wp.rsplit("/", i)[0] for wp in by_path for i in range(1, wp.count("/") + 1)}
    for workspace_path in sorted(set(by_path) & folders):
        problems.append(
            f"{by_path[workspace_path][0]}: workspace path '{workspace_path}' is also a folder; "
            "rename the notebook or the folder"
        )
    return problems


def discover(
    source: Path,
    *,
    include: Sequence[str] = DEFAULT_INCLUDE,
    exclude: Sequence[str] = (),
    strip_outputs: bool = True,
    allow_files: bool = True,
) -> list[SourceObject]:
    """Find, classify and validate everything under ``source``; sorted by path.

    :param source: the folder holding the notebooks.
    :param include: globs (relative to ``source``) of what to package.
    :param exclude: globs of what to leave out, applied after ``include``.
    :param strip_outputs: store ``.ipynb`` without outputs and execution counts.
    :param allow_files: package non-notebooks as workspace files; when false they are refused.
    :raises BuildError: with every problem found (``file:line: reason`` where a line applies).
    """
    if not source.is_dir():
        raise BuildError(f"source folder {source} does not exist; check `source` in the config")
    objects: list[SourceObject] = []
    problems: list[str] = []
    for relpath, file in _walk(source):
        if not _selected(relpath, include, exclude):
            continue
        if file.is_symlink():
            problems.append(f"{relpath}: is a symbolic link; the workspace cannot hold links")
            continue
        if not file.is_file():
            problems.append(f"{relpath}: not a regular file")
            continue
        size, limit = file.stat().st_size, _read_limit(relpath, strip_outputs)
        if size > limit:
            problems.append(_too_large(relpath, size, limit))
            continue
        try:
            data = file.read_bytes()
        except OSError as exc:
            problems.append(f"{relpath}: cannot read: {exc.strerror or exc}")
            continue
        for line, what in scan_credentials(data):
            problems.append(
                f"{relpath}:{line}: looks like a {what}; remove it (use a secret scope) or "
                f"mark a false positive with '{ALLOW_SECRET_MARKER}'"
            )
        obj, found = _classify(relpath, file, data, strip_outputs, allow_files)
        problems.extend(found)
        if obj is not None:
            objects.append(obj)
    problems.extend(_collisions(objects))
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise BuildError(
            f"cannot build: {len(problems)} {noun}: " + "; ".join(problems),
            problems=problems,
            source=source,
        )
    if not objects:
        raise BuildError(f"nothing to build: no files under {source} match the include globs")
    return objects
