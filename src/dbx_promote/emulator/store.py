"""The emulated workspace tree: objects in SQLite, and the Workspace API semantics on them.

Every public method either returns a value or raises `ApiError`, which carries the HTTP
status, ``error_code`` and message the real service would answer with. The HTTP layer
only translates requests into these calls. One lock serialises all access to the SQLite
connection, so the store is safe to share between the server's threads.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import os
import posixpath
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_IMPORT_BYTES = 10485760
IMPORT_FORMATS = ("AUTO", "DBC", "HTML", "JUPYTER", "RAW", "R_MARKDOWN", "SOURCE")
EXPORT_FORMATS = IMPORT_FORMATS
LANGUAGES = ("PYTHON", "R", "SCALA", "SQL")
UNSUPPORTED_FORMATS = ("DBC", "HTML", "R_MARKDOWN")

HEADERS = {
    "PYTHON": b"# Databricks notebook source",
    "R": b"# Databricks notebook source",
    "SQL": b"-- Databricks notebook source",
    "SCALA": b"// Databricks notebook source",
}
COMMENT = {"PYTHON": b"#", "R": b"#", "SQL": b"--", "SCALA": b"//"}
FILE_TYPES = {"PYTHON": "py", "R": "r", "SQL": "sql", "SCALA": "scala"}
# AUTO import: extension (case-insensitive) -> language whose header must be the first line.
AUTO_EXTENSIONS = {".py": "PYTHON", ".sql": "SQL", ".scala": "SCALA", ".r": "R"}
WORKSPACE_PREFIX = "/Workspace"
FIRST_OBJECT_ID = 1_000_000_000_000_001


class ApiError(Exception):
    """A Workspace API error: HTTP ``status``, ``error_code`` and ``message``."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, str]:
        """The JSON error body the service sends."""
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> ApiError:
    """A 400 INVALID_PARAMETER_VALUE error."""
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def not_found(path: str) -> ApiError:
    """The 404 RESOURCE_DOES_NOT_EXIST error for ``path``."""
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")


@dataclass(frozen=True)
class WsPath:
    """A requested workspace path: ``canonical`` (no /Workspace prefix) and how to echo it."""

    canonical: str
    prefixed: bool

    def echo(self, canonical: str) -> str:
        """Spell ``canonical`` the way the request spelled its path."""
        if not self.prefixed:
            return canonical
        return WORKSPACE_PREFIX if canonical == "/" else WORKSPACE_PREFIX + canonical


def parse_path(raw: Any) -> WsPath:
    """Validate and normalise a request path; raise `ApiError` 400 if it is unusable."""
    if raw is None or raw == "":
        raise invalid("Missing required field: path")
    if not isinstance(raw, str):
        raise invalid("Field 'path' must be a string.")
    if not raw.startswith("/"):
        raise invalid(f"Path ({raw}) is not absolute.")
    parts = [p for p in raw.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\x00" in raw:
        raise invalid(f"Path ({raw}) is not a valid workspace path.")
    prefixed = bool(parts) and parts[0] == "Workspace"
    if prefixed:
        parts = parts[1:]
    return WsPath("/" + "/".join(parts), prefixed)


def parent_of(path: str) -> str:
    """The parent of a canonical path (the root is its own parent)."""
    return posixpath.dirname(path) or "/"


def header_of(content: bytes) -> bytes:
    """The first line of ``content`` without its line ending."""
    return content.split(b"\n", 1)[0].rstrip(b"\r").rstrip()


def ensure_header(content: bytes, language: str) -> bytes:
    """Source notebook bytes that start with the language's header line exactly once."""
    header = HEADERS[language]
    if header_of(content) == header:
        return content
    return header + b"\n" + content


def ipynb_to_source(raw: bytes) -> bytes:
    """Convert .ipynb JSON to Python notebook source; raise `ApiError` 400 if not a notebook."""
    try:
        nb = json.loads(raw.decode("utf-8"))
        cells = nb["cells"]
        if not isinstance(cells, list):
            raise TypeError("cells")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise invalid(f"The content is not a valid Jupyter notebook: {exc}") from None
    out: list[str] = []
    for cell in cells:
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        text = "".join(src) if isinstance(src, list) else str(src)
        text = text.rstrip("\n")
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            lines = ("%md\n" + text).split("\n")
            text = "\n".join(f"# MAGIC {line}".rstrip() for line in lines)
        out.append(text)
    body = "\n\n# COMMAND ----------\n\n".join(out)
    return HEADERS["PYTHON"] + b"\n" + body.encode("utf-8")


def source_to_ipynb(content: bytes, language: str) -> bytes:
    """Build .ipynb JSON (nbformat 4) from notebook source; ``%md`` MAGIC cells become markdown."""
    comment = COMMENT[language].decode()
    text = content.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[0].rstrip() == HEADERS[language].decode():
        lines = lines[1:]
    separator = f"{comment} COMMAND ----------"
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line.rstrip() == separator:
            chunks.append([])
        else:
            chunks[-1].append(line)
    cells: list[dict[str, Any]] = []
    magic = f"{comment} MAGIC"
    for chunk in chunks:
        body = "\n".join(chunk).strip("\n")
        body_lines = body.split("\n")
        if body_lines and body_lines[0].startswith(f"{magic} %md"):
            md = [line[len(magic) :].removeprefix(" ") for line in body_lines]
            md[0] = md[0].removeprefix("%md").lstrip()
            source = "\n".join(md).strip("\n")
            cells.append({"cell_type": "markdown", "metadata": {}, "source": source})
        else:
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {},
                    "outputs": [],
                    "source": body,
                }
            )
    nb = {
        "cells": cells,
        "metadata": {"language_info": {"name": language.lower()}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1).encode("utf-8")


@dataclass(frozen=True)
class ImportRequest:
    """A validated import request (from JSON or multipart)."""

    path: WsPath
    content: bytes
    format: str
    language: str | None
    overwrite: bool


_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    path TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    object_type TEXT NOT NULL,
    language TEXT,
    object_id INTEGER NOT NULL UNIQUE,
    content BLOB,
    ipynb BLOB,
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_parent ON objects(parent);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS acl (
    object_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    PRIMARY KEY (object_id, kind, name)
);
"""

_COLUMNS = "path, object_type, language, object_id, content, ipynb, created_at, modified_at"
_SUBTREE = "path=? OR substr(path, 1, ?)=?"

# A direct grant as stored: (kind, name, level); kind is user_name, group_name or
# service_principal_name, the access-control field that names the principal.
Grant = tuple[str, str, str]


@dataclass
class _Row:
    path: str
    object_type: str
    language: str | None
    object_id: int
    content: bytes | None
    ipynb: bytes | None
    created_at: int
    modified_at: int


class Store:
    """The workspace tree in SQLite (a file in ``state_dir``, else in memory)."""

    def __init__(self, state_dir: str | os.PathLike[str] | None, user: str) -> None:
        self.user = user
        self._homes: tuple[str, ...] = ()
        self._lock = threading.RLock()
        if state_dir is None:
            target = ":memory:"
        else:
            Path(state_dir).mkdir(parents=True, exist_ok=True)
            target = str(Path(state_dir) / "workspace.db")
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        with self._lock:
            if state_dir is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            with self._tx():
                self._ensure_roots()

    # --- bookkeeping -------------------------------------------------------------------

    @property
    def roots(self) -> tuple[str, ...]:
        """Built-in folders that always exist and cannot be deleted."""
        homes = tuple(f"/Users/{h}" for h in self._homes if h != self.user)
        return ("/", "/Users", f"/Users/{self.user}", "/Shared", "/Repos", *homes)

    @property
    def home_owners(self) -> tuple[str, ...]:
        """Names whose ``/Users/<name>`` home is a built-in folder."""
        return (self.user, *(h for h in self._homes if h != self.user))

    def set_homes(self, names: list[str]) -> None:
        """Make ``/Users/<name>`` a built-in folder for each of ``names`` (created if missing)."""
        with self._tx():
            self._homes = tuple(dict.fromkeys(names))
            self._ensure_roots()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """Hold the lock and run the block as one SQLite transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except ApiError:
                # Service errors keep partial work (mkdirs may leave parents), like the service.
                self._db.execute("COMMIT")
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _meta(self, key: str, default: int) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def _next_id(self) -> int:
        value = self._meta("next_object_id", FIRST_OBJECT_ID)
        self._set_meta("next_object_id", value + 1)
        return value

    def _now(self) -> int:
        # Strictly increasing across changes, so a change is always visible in modified_at.
        now = max(int(time.time() * 1000), self._meta("last_ts", 0) + 1)
        self._set_meta("last_ts", now)
        return now

    def _get(self, path: str) -> _Row | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM objects WHERE path=?", (path,)).fetchone()
        return _Row(*row) if row else None

    def _insert_dir(self, path: str, creator: tuple[str, str] | None = None) -> None:
        ts = self._now()
        object_id = self._next_id()
        self._db.execute(
            f"INSERT INTO objects({_COLUMNS}, parent) VALUES (?,?,?,?,?,?,?,?,?)",
            (path, "DIRECTORY", None, object_id, None, None, ts, ts, parent_of(path)),
        )
        self._grant_creator(object_id, creator)

    def _grant_creator(self, object_id: int, creator: tuple[str, str] | None) -> None:
        # The workspace gives whoever creates an object CAN_MANAGE on it, as a direct grant.
        if creator is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO acl(object_id, kind, name, level) VALUES (?,?,?,?)",
                (object_id, creator[0], creator[1], "CAN_MANAGE"),
            )

    def _ensure_roots(self) -> None:
        for root in self.roots:
            if self._get(root) is None:
                self._insert_dir(root)

    def reset(self) -> None:
        """Empty the tree except the built-in roots."""
        with self._tx():
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM acl")
            self._ensure_roots()

    def _info(self, row: _Row, req: WsPath) -> dict[str, Any]:
        info: dict[str, Any] = {
            "object_type": row.object_type,
            "path": req.echo(row.path),
            "object_id": row.object_id,
            "resource_id": str(row.object_id),
        }
        if row.object_type == "DIRECTORY":
            return info
        if row.language:
            info["language"] = row.language
        info["created_at"] = row.created_at
        info["modified_at"] = row.modified_at
        info["size"] = len(row.content or b"")
        return info

    # --- read endpoints ----------------------------------------------------------------

    def get_status(self, req: WsPath) -> dict[str, Any]:
        """ObjectInfo of ``req``; 404 RESOURCE_DOES_NOT_EXIST if missing."""
        with self._lock:
            row = self._get(req.canonical)
            if row is None:
                raise not_found(req.echo(req.canonical))
            return self._info(row, req)

    def list(self, req: WsPath, modified_after: int | None = None) -> list[dict[str, Any]]:
        """One level of a directory, or the object itself; 404 if missing."""
        with self._lock:
            row = self._get(req.canonical)
            if row is None:
                raise not_found(req.echo(req.canonical))
            if row.object_type != "DIRECTORY":
                return [self._info(row, req)]
            rows = [
                _Row(*r)
                for r in self._db.execute(
                    f"SELECT {_COLUMNS} FROM objects WHERE parent=? AND path<>'/' ORDER BY path",
                    (req.canonical,),
                )
            ]
        if modified_after is not None:
            rows = [
                r for r in rows if r.object_type != "NOTEBOOK" or r.modified_at > modified_after
            ]
        return [self._info(r, req) for r in rows]

    def export(self, req: WsPath, fmt: str) -> tuple[bytes, str | None]:
        """Content and ``file_type`` of ``req`` in ``fmt``; 404 / 400 / 501 `ApiError`."""
        with self._lock:
            row = self._get(req.canonical)
        if row is None:
            raise not_found(req.echo(req.canonical))
        if fmt in UNSUPPORTED_FORMATS:
            raise ApiError(
                501, "NOT_IMPLEMENTED", f"Export format {fmt} is not supported by the emulator."
            )
        if row.object_type == "DIRECTORY":
            if fmt not in ("SOURCE", "AUTO"):
                raise invalid(
                    f"Export format {fmt} is not supported for a directory ({req.echo(row.path)})."
                )
            return self._export_directory(row, fmt)
        content = row.content or b""
        if row.object_type == "FILE":
            if fmt == "JUPYTER":
                raise invalid(f"Export format JUPYTER is not supported for a file ({row.path}).")
            ext = posixpath.splitext(row.path)[1]
            return content, (ext[1:] or None)
        language = row.language or "PYTHON"
        if fmt == "JUPYTER" or (fmt == "AUTO" and row.ipynb is not None):
            return row.ipynb or source_to_ipynb(content, language), "ipynb"
        return content, FILE_TYPES[language]

    # --- write endpoints ---------------------------------------------------------------

    def mkdirs(self, req: WsPath, creator: tuple[str, str] | None = None) -> None:
        """Create ``req`` and missing parents; 400 RESOURCE_ALREADY_EXISTS through a non-folder."""
        parts = [p for p in req.canonical.split("/") if p]
        with self._tx():
            current = ""
            for part in parts:
                current += "/" + part
                row = self._get(current)
                if row is None:
                    self._insert_dir(current, creator)
                elif row.object_type != "DIRECTORY":
                    raise ApiError(
                        400,
                        "RESOURCE_ALREADY_EXISTS",
                        f"{req.echo(current)} already exists and it is not a folder",
                    )

    def delete(self, req: WsPath, recursive: bool) -> None:
        """Delete ``req`` (and its subtree if ``recursive``).

        Raises 404 RESOURCE_DOES_NOT_EXIST, 400 DIRECTORY_NOT_EMPTY, or 403
        PERMISSION_DENIED for a built-in root folder.
        """
        path = req.canonical
        with self._lock:
            row = self._get(path)
            if row is None:
                raise not_found(req.echo(path))
            if path in self.roots:
                raise ApiError(
                    403,
                    "PERMISSION_DENIED",
                    f"Cannot delete the special folder ({req.echo(path)}).",
                )
            if row.object_type == "DIRECTORY":
                child = self._db.execute(
                    "SELECT 1 FROM objects WHERE parent=? LIMIT 1", (path,)
                ).fetchone()
                if child and not recursive:
                    raise ApiError(
                        400, "DIRECTORY_NOT_EMPTY", f"Folder ({req.echo(path)}) is not empty"
                    )
            prefix = path + "/"
            self._db.execute(
                f"DELETE FROM acl WHERE object_id IN (SELECT object_id FROM objects WHERE {_SUBTREE})",
                (path, len(prefix), prefix),
            )
            self._db.execute(f"DELETE FROM objects WHERE {_SUBTREE}", (path, len(prefix), prefix))

    def resolve_import(
        self, req: ImportRequest
    ) -> tuple[str, str, str | None, bytes, bytes | None]:
        """Decide (canonical path, object type, language, stored bytes, ipynb) for an import."""
        fmt, content, path = req.format, req.content, req.path.canonical
        if len(content) > MAX_IMPORT_BYTES:
            raise ApiError(
                400,
                "MAX_NOTEBOOK_SIZE_EXCEEDED",
                f"File size imported is ({len(content)} bytes), exceeded max size "
                f"({MAX_IMPORT_BYTES} bytes)",
            )
        if fmt in UNSUPPORTED_FORMATS:
            raise ApiError(
                501, "NOT_IMPLEMENTED", f"Import format {fmt} is not supported by the emulator."
            )
        if fmt == "RAW":
            return path, "FILE", None, content, None
        if fmt == "JUPYTER":
            return path, "NOTEBOOK", "PYTHON", ipynb_to_source(content), content
        if fmt == "SOURCE":
            if req.language:
                return path, "NOTEBOOK", req.language, ensure_header(content, req.language), None
            # A directory archive; `import_` handles it before resolving a single object.
            raise invalid("The zip archive contains no items.")
        # AUTO: the extension plus the first line decide.
        stem, ext = posixpath.splitext(path)
        if ext.lower() == ".ipynb" and stem and not stem.endswith("/"):
            return stem, "NOTEBOOK", "PYTHON", ipynb_to_source(content), content
        language = AUTO_EXTENSIONS.get(ext.lower())
        if language and stem and header_of(content) == HEADERS[language]:
            return stem, "NOTEBOOK", language, content, None
        return path, "FILE", None, content, None

    def import_(
        self,
        req: ImportRequest,
        directory_mode: str = "accept",
        creator: tuple[str, str] | None = None,
    ) -> None:
        """Create or overwrite an object, or create a folder from a directory archive.

        ``directory_mode`` is `Controls.directory_import` (accept, refuse, drop-one).
        Raises 404 RESOURCE_DOES_NOT_EXIST (missing parent folder), 400
        RESOURCE_ALREADY_EXISTS (exists without overwrite, type change, parent not a
        folder, a directory import onto any existing name), 400
        MAX_NOTEBOOK_SIZE_EXCEEDED, 400 INVALID_PARAMETER_VALUE, 501.
        """
        if req.format == "SOURCE" and req.language is None:
            self._import_directory(req, directory_mode, creator)
            return
        path, otype, language, content, ipynb = self.resolve_import(req)
        echo = req.path.echo
        with self._tx():
            self._check_parent(path, echo)
            row = self._get(path)
            if row is not None:
                if not req.overwrite:
                    raise ApiError(
                        400, "RESOURCE_ALREADY_EXISTS", f"Path ({echo(path)}) already exists."
                    )
                if row.object_type != otype:
                    raise ApiError(
                        400,
                        "RESOURCE_ALREADY_EXISTS",
                        f"Path ({echo(path)}) already exists as a {row.object_type}; "
                        f"it cannot be overwritten by a {otype}. Delete it first.",
                    )
                self._db.execute(
                    "UPDATE objects SET language=?, content=?, ipynb=?, modified_at=? WHERE path=?",
                    (language, content, ipynb, self._now(), path),
                )
                return
            ts = self._now()
            object_id = self._next_id()
            self._db.execute(
                f"INSERT INTO objects({_COLUMNS}, parent) VALUES (?,?,?,?,?,?,?,?,?)",
                (path, otype, language, object_id, content, ipynb, ts, ts, parent_of(path)),
            )
            self._grant_creator(object_id, creator)

    # --- access control lists ------------------------------------------------------------

    def object_by_id(self, object_id: int) -> tuple[str, str] | None:
        """(canonical path, object type) of the object with ``object_id``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT path, object_type FROM objects WHERE object_id=?", (object_id,)
            ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def chain(self, path: str) -> builtins.list[tuple[str, int]]:
        """(path, object_id) of ``path`` and each existing ancestor, nearest first."""
        out: builtins.list[tuple[str, int]] = []
        with self._lock:
            current = path
            while True:
                row = self._db.execute(
                    "SELECT object_id FROM objects WHERE path=?", (current,)
                ).fetchone()
                if row is not None:
                    out.append((current, int(row[0])))
                if current == "/":
                    return out
                current = parent_of(current)

    def grants(self, object_ids: builtins.list[int]) -> dict[int, builtins.list[Grant]]:
        """The direct grants of each of ``object_ids`` (sorted by kind and name)."""
        out: dict[int, builtins.list[Grant]] = {i: [] for i in object_ids}
        if not object_ids:
            return out
        marks = ",".join("?" * len(object_ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT object_id, kind, name, level FROM acl WHERE object_id IN ({marks}) "
                "ORDER BY kind, name",
                object_ids,
            ).fetchall()
        for object_id, kind, name, level in rows:
            out[int(object_id)].append((str(kind), str(name), str(level)))
        return out

    def set_grants(self, object_id: int, grants: builtins.list[Grant], replace: bool) -> None:
        """Write direct grants of ``object_id``: all of them (``replace``) or merged by principal."""
        with self._tx():
            if replace:
                self._db.execute("DELETE FROM acl WHERE object_id=?", (object_id,))
            self._db.executemany(
                "INSERT OR REPLACE INTO acl(object_id, kind, name, level) VALUES (?,?,?,?)",
                [(object_id, kind, name, level) for kind, name, level in grants],
            )

    def _check_parent(self, path: str, echo: Any) -> None:
        """Refuse an import at ``path`` whose parent is missing or not a folder."""
        if path == "/":
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({echo(path)}) already exists.")
        parent = parent_of(path)
        prow = self._get(parent)
        if prow is None:
            raise ApiError(
                404,
                "RESOURCE_DOES_NOT_EXIST",
                f"The parent folder ({echo(parent)}) does not exist.",
            )
        if prow.object_type != "DIRECTORY":
            raise ApiError(
                400,
                "RESOURCE_ALREADY_EXISTS",
                f"{echo(parent)} already exists and it is not a folder",
            )

    def _import_directory(
        self, req: ImportRequest, mode: str, creator: tuple[str, str] | None = None
    ) -> None:
        """Create the folder ``req.path`` from a directory archive, in one transaction."""
        from dbx_promote.emulator import directory

        if len(req.content) > MAX_IMPORT_BYTES:
            self.resolve_import(req)  # the size error, worded as for any import
        if mode == directory.REFUSE:
            raise ApiError(
                400,
                "BAD_REQUEST",
                "Importing a directory is not allowed on this workspace (emulator control).",
            )
        objects = directory.read_archive(req.content)
        if mode == directory.DROP_ONE:
            last = max(o.path for o in objects if o.object_type == "NOTEBOOK")
            objects = [o for o in objects if o.path != last]
        path, echo = req.path.canonical, req.path.echo
        with self._tx():
            self._check_parent(path, echo)
            if self._get(path) is not None:
                # The service no longer imports over an existing name (databricks/cli#4650);
                # a folder cannot be merged into or replaced, whatever `overwrite` says.
                raise ApiError(
                    400, "RESOURCE_ALREADY_EXISTS", f"Path ({echo(path)}) already exists."
                )
            self._insert_dir(path, creator)
            for obj in objects:
                full = f"{path}/{obj.path}"
                if obj.object_type == "DIRECTORY":
                    self._insert_dir(full, creator)
                    continue
                ts = self._now()
                object_id = self._next_id()
                self._db.execute(
                    f"INSERT INTO objects({_COLUMNS}, parent) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        full,
                        "NOTEBOOK",
                        obj.language,
                        object_id,
                        obj.content,
                        obj.ipynb,
                        ts,
                        ts,
                        parent_of(full),
                    ),
                )
                self._grant_creator(object_id, creator)

    def _export_directory(self, row: _Row, fmt: str) -> tuple[bytes, str | None]:
        """A folder as a zip in the export layout; files only with ``AUTO``."""
        from dbx_promote.emulator import directory

        prefix = row.path.rstrip("/") + "/"
        with self._lock:
            rows = [
                _Row(*r)
                for r in self._db.execute(
                    f"SELECT {_COLUMNS} FROM objects WHERE substr(path, 1, ?)=? ORDER BY path",
                    (len(prefix), prefix),
                )
            ]
        objects = [
            directory.ArchiveObject(
                r.path[len(prefix) :], r.object_type, r.language, r.content, r.ipynb
            )
            for r in rows
        ]
        top = posixpath.basename(row.path) or "Workspace"
        return directory.write_archive(top, objects, files=fmt == "AUTO"), "zip"

    # --- controls ------------------------------------------------------------------------

    def tree(self, root: str = "/") -> dict[str, dict[str, Any]]:
        """Every object at or under ``root`` (canonical paths) with hashes; {} if missing."""
        base = parse_path(root).canonical
        prefix = "/" if base == "/" else base + "/"
        with self._lock:
            rows = [
                _Row(*r)
                for r in self._db.execute(
                    f"SELECT {_COLUMNS} FROM objects WHERE path=? OR substr(path, 1, ?)=? "
                    "ORDER BY path",
                    (base, len(prefix), prefix),
                )
            ]
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            is_dir = r.object_type == "DIRECTORY"
            data = r.content or b""
            out[r.path] = {
                "object_type": r.object_type,
                "language": r.language,
                "object_id": r.object_id,
                "size": None if is_dir else len(data),
                "sha256": None if is_dir else hashlib.sha256(data).hexdigest(),
                "created_at": r.created_at,
                "modified_at": r.modified_at,
            }
        return out

    def read(self, path: str) -> bytes:
        """Stored bytes of a notebook or file; `ApiError` 404 if missing, 400 for a folder."""
        req = parse_path(path)
        with self._lock:
            row = self._get(req.canonical)
        if row is None:
            raise not_found(path)
        if row.object_type == "DIRECTORY":
            raise invalid(f"Path ({path}) is a folder and has no content.")
        return row.content or b""

    def backdate(self, path: str, seconds: float) -> None:
        """Move an object's ``modified_at`` ``seconds`` into the past, as if it had last
        been written then (a lock left by a deploy that died long ago). 404 if missing."""
        req = parse_path(path)
        with self._tx():
            if self._get(req.canonical) is None:
                raise not_found(path)
            self._db.execute(
                "UPDATE objects SET modified_at = modified_at - ? WHERE path=?",
                (int(seconds * 1000), req.canonical),
            )

    def hand_edit(self, path: str, content: bytes | None = None) -> None:
        """Change an object's content and bump ``modified_at`` as a UI edit would.

        Without ``content``, a notebook gets a new cell and a file a new line. Keeps
        ``object_id``. Raises `ApiError` 404 if missing, 400 for a folder.
        """
        req = parse_path(path)
        with self._tx():
            row = self._get(req.canonical)
            if row is None:
                raise not_found(path)
            if row.object_type == "DIRECTORY":
                raise invalid(f"Path ({path}) is a folder and cannot be edited.")
            old = row.content or b""
            if content is None:
                if row.object_type == "NOTEBOOK":
                    c = COMMENT[row.language or "PYTHON"]
                    content = old.rstrip(b"\n") + b"\n\n" + c + b" COMMAND ----------\n\n"
                    content += c + b" edited by hand\n"
                else:
                    content = old + (b"" if old.endswith(b"\n") or not old else b"\n")
                    content += b"# edited by hand\n"
            elif row.object_type == "NOTEBOOK":
                content = ensure_header(content, row.language or "PYTHON")
            self._db.execute(
                "UPDATE objects SET content=?, ipynb=NULL, modified_at=? WHERE path=?",
                (content, self._now(), req.canonical),
            )


def decode_b64(value: Any) -> bytes:
    """Decode base64 ``content``; raise `ApiError` 400 if it is not valid base64."""
    if not isinstance(value, str):
        raise invalid("Field 'content' must be a base64 string.")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise invalid("The content is not valid base64.") from None
