"""Conformance rows for the Workspace API 2.0 (workspace-api.md §1) and SCIM `Me`.

Each row is one behaviour of the service; ``expected`` is the emulator's answer. Rows whose
answer is the emulator's own choice carry that choice's wording from docs/emulator.md.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language

from conformance_suite import Behaviour, Scratch

HEADER = "# Databricks notebook source"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def download(s: Scratch, rel: str, fmt: ExportFormat | None = None) -> str:
    with s.w.workspace.download(s.path(rel), format=fmt) as f:
        return bytes(f.read()).decode("utf-8", "replace")


def info(s: Scratch, path: str) -> dict[str, Any]:
    """The stable facts of get-status: type, path, language (ids and times vary)."""
    o = s.w.workspace.get_status(path)
    return {"object_type": o.object_type, "path": o.path, "language": o.language}


def upload(s: Scratch, rel: str, data: bytes, **kw: Any) -> None:
    s.w.workspace.upload(s.path(rel), data, **kw)


def notebook_json(*cells: tuple[str, str]) -> bytes:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True)}
                for kind, src in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    ).encode()


def _missing(code: str = "RESOURCE_DOES_NOT_EXIST", **kw: str) -> dict[str, Any]:
    return {"raises": "ResourceDoesNotExist", "error_code": code, **kw}


def _status_fields(s: Scratch) -> dict[str, Any]:
    upload(s, "nb.py", b"print(1)")
    o = s.w.workspace.get_status(s.path("nb.py"))
    return {
        "object_type": o.object_type,
        "language": o.language,
        "resource_id_is_object_id": o.resource_id == str(o.object_id),
        "size": o.size,
        "modified_at_is_created_at": o.created_at is not None and o.modified_at == o.created_at,
    }


def _prefix(s: Scratch) -> dict[str, Any]:
    upload(s, "nb.py", b"1")
    plain = s.w.workspace.get_status(s.path("nb.py"))
    prefixed = s.w.workspace.get_status("/Workspace" + s.path("nb.py"))
    return {"same_object": prefixed.object_id == plain.object_id, "path": prefixed.path}


def _unique_ids(s: Scratch) -> int:
    s.w.workspace.mkdirs(s.path("d"))
    upload(s, "d/a.py", b"1")
    upload(s, "d/b.py", b"2")
    ids = [o.object_id for o in s.w.workspace.list(s.path("d"))]
    ids.append(s.w.workspace.get_status(s.path("d")).object_id)
    return len(set(ids))


def _list_one_level(s: Scratch) -> list[Any]:
    s.w.workspace.mkdirs(s.path("p/sub"))
    upload(s, "p/a.py", b"1")
    upload(s, "p/sub/deep.py", b"2")
    return sorted([str(o.path), o.object_type.value] for o in s.w.workspace.list(s.path("p")))  # type: ignore[union-attr]


def _list_empty_raw(s: Scratch) -> Any:
    s.w.workspace.mkdirs(s.path("empty"))
    return s.w.api_client.do("GET", "/api/2.0/workspace/list", query={"path": s.path("empty")})


def _list_notebook(s: Scratch) -> list[Any]:
    upload(s, "nb.py", b"1")
    return [[o.path, o.object_type] for o in s.w.workspace.list(s.path("nb.py"))]


def _recursive(s: Scratch) -> list[str]:
    s.w.workspace.mkdirs(s.path("r/x/y"))
    upload(s, "r/a.py", b"1")
    upload(s, "r/x/y/b.py", b"2")
    return sorted(str(o.path) for o in s.w.workspace.list(s.path("r"), recursive=True))


def _list_prefix(s: Scratch) -> list[Any]:
    upload(s, "a.py", b"1")
    return [o.path for o in s.w.workspace.list("/Workspace" + s.path())]


def _modified_after(s: Scratch) -> list[str]:
    upload(s, "old.py", b"1")
    cutoff = s.w.workspace.get_status(s.path("old.py")).modified_at
    upload(s, "new.py", b"2")
    upload(s, "file.txt", b"x", format=ImportFormat.AUTO)
    return sorted(
        str(o.path) for o in s.w.workspace.list(s.path(), notebooks_modified_after=cutoff)
    )


def _mkdirs_idempotent(s: Scratch) -> dict[str, Any]:
    s.w.workspace.mkdirs(s.path("a/b/c"))
    first = s.w.workspace.get_status(s.path("a/b/c")).object_id
    s.w.workspace.mkdirs(s.path("a/b/c"))
    return {
        "same_id": s.w.workspace.get_status(s.path("a/b/c")).object_id == first,
        "parent": info(s, s.path("a")),
    }


def _mkdirs_through_notebook(s: Scratch) -> Any:
    upload(s, "nb.py", b"1")
    s.w.workspace.mkdirs(s.path("nb.py/sub"))


def _upload_source(s: Scratch) -> dict[str, Any]:
    upload(s, "etl.py", b"print(1)")
    return {"info": info(s, s.path("etl.py")), "content": download(s, "etl.py")}


def _no_double_header(s: Scratch) -> str:
    upload(s, "h.py", b"# Databricks notebook source\nprint('first upload')")
    return download(s, "h.py")


def _exists(s: Scratch) -> Any:
    upload(s, "nb.py", b"1")
    upload(s, "nb.py", b"2")


def _overwrite_keeps_id(s: Scratch) -> dict[str, Any]:
    upload(s, "nb.py", b"1")
    before = s.w.workspace.get_status(s.path("nb.py"))
    upload(s, "nb.py", b"2", overwrite=True)
    after = s.w.workspace.get_status(s.path("nb.py"))
    return {
        "same_id": after.object_id == before.object_id,
        "modified_at_grew": (after.modified_at or 0) > (before.modified_at or 0),
        "content": download(s, "nb.py"),
    }


def _delete_new_id(s: Scratch) -> bool:
    upload(s, "nb.py", b"1")
    first = s.w.workspace.get_status(s.path("nb.py")).object_id
    s.w.workspace.delete(s.path("nb.py"))
    upload(s, "nb.py", b"1")
    return s.w.workspace.get_status(s.path("nb.py")).object_id != first


def _auto(path: str, content: bytes, result: str) -> Any:
    def probe(s: Scratch) -> dict[str, Any]:
        upload(s, path, content, format=ImportFormat.AUTO)
        return {"info": info(s, s.path(result)), "content": download(s, result)}

    return probe


AUTO_CASES = [
    # (row suffix, uploaded path, content, resulting path, type, language)
    ("py-header", "a.py", b"# Databricks notebook source\nx=1", "a", "NOTEBOOK", "PYTHON"),
    ("py-no-header", "b.py", b"x=1", "b.py", "FILE", None),
    ("header-no-extension", "c", b"# Databricks notebook source\nx=1", "c", "FILE", None),
    ("sql-header", "d.sql", b"-- Databricks notebook source\nselect 1", "d", "NOTEBOOK", "SQL"),
    ("scala-header", "e.scala", b"// Databricks notebook source\n1", "e", "NOTEBOOK", "SCALA"),
    ("r-header", "f.r", b"# Databricks notebook source\n1", "f", "NOTEBOOK", "R"),
    ("upper-case-extension", "G.PY", b"# Databricks notebook source\n1", "G", "NOTEBOOK", "PYTHON"),
    ("wrong-header", "h.sql", b"# Databricks notebook source\n1", "h.sql", "FILE", None),
    ("json", "i.json", b"{}", "i.json", "FILE", None),
]


def _auto_rows() -> list[Behaviour]:
    rows = []
    for suffix, path, content, result, otype, language in AUTO_CASES:
        rows.append(
            Behaviour(
                f"import/auto-{suffix}",
                "workspace",
                f"upload {path} format=AUTO",
                {
                    "info": {
                        "object_type": otype,
                        "path": f"<scratch>/{result}",
                        "language": language,
                    },
                    "content": content.decode(),
                },
                _auto(path, content, result),
            )
        )
    return rows


def _ipynb_auto(s: Scratch) -> dict[str, Any]:
    upload(s, "j.ipynb", notebook_json(("code", "x = 1")), format=ImportFormat.AUTO)
    return info(s, s.path("j"))


def _jupyter(s: Scratch) -> dict[str, Any]:
    nb = notebook_json(("markdown", "# Title"), ("code", "x = 1\nprint(x)"))
    upload(s, "nb", nb, format=ImportFormat.JUPYTER)
    exported = json.loads(download(s, "nb", ExportFormat.JUPYTER))
    return {
        "info": info(s, s.path("nb")),
        "source": download(s, "nb"),
        "jupyter_cells": [c["cell_type"] for c in exported["cells"]],
    }


def _raw(s: Scratch) -> dict[str, Any]:
    data = bytes(range(256))
    upload(s, "blob.bin", data, format=ImportFormat.RAW)
    with s.w.workspace.download(s.path("blob.bin")) as f:
        same = bytes(f.read()) == data
    return {"info": info(s, s.path("blob.bin")), "same_bytes": same}


def _unsupported(fmt: ImportFormat) -> Any:
    return lambda s: s.w.workspace.import_(s.path("x"), content=b64(b"x"), format=fmt)


def _type_change(first: ImportFormat | None, second: ImportFormat, target: str) -> Any:
    def probe(s: Scratch) -> Any:
        if first is None:
            s.w.workspace.mkdirs(s.path(target))
        else:
            upload(s, target, b"1", format=first, language=Language.PYTHON)
        upload(s, target, b"2", format=second, language=Language.PYTHON, overwrite=True)

    return probe


def _json_import(s: Scratch) -> str:
    s.w.workspace.import_(
        s.path("q.sql"), content=b64(b"select 1"), format=ImportFormat.SOURCE, language=Language.SQL
    )
    return download(s, "q.sql")


def _prefixed_import(s: Scratch) -> dict[str, Any]:
    s.w.workspace.upload("/Workspace" + s.path("w.py"), b"1")
    return info(s, s.path("w.py"))


def _export_json(language: Language) -> Any:
    def probe(s: Scratch) -> dict[str, Any]:
        upload(s, "nb", b"1", language=language)
        resp = s.w.workspace.export(s.path("nb"))
        return {
            "file_type": resp.file_type,
            "content": base64.b64decode(resp.content or "").decode(),
        }

    return probe


def _export_file(s: Scratch) -> dict[str, Any]:
    upload(s, "conf.json", b'{"a": 1}', format=ImportFormat.AUTO)
    resp = s.w.workspace.export(s.path("conf.json"))
    return {
        "download": download(s, "conf.json"),
        "content": base64.b64decode(resp.content or "").decode(),
        "file_type": resp.file_type,
    }


def _delete_notebook(s: Scratch) -> Any:
    upload(s, "nb.py", b"1")
    s.w.workspace.delete(s.path("nb.py"))
    return s.w.workspace.get_status(s.path("nb.py"))


def _delete_not_empty(s: Scratch) -> Any:
    s.w.workspace.mkdirs(s.path("p/q"))
    s.w.workspace.delete(s.path("p"))


def _delete_recursive(s: Scratch) -> list[str]:
    s.w.workspace.mkdirs(s.path("p/q"))
    upload(s, "p/q/nb.py", b"1")
    s.w.workspace.mkdirs(s.path("pq"))  # a sibling sharing the prefix survives
    s.w.workspace.delete(s.path("p"), recursive=True)
    return sorted(str(o.path) for o in s.w.workspace.list(s.path()))


def _delete_empty(s: Scratch) -> Any:
    s.w.workspace.mkdirs(s.path("e"))
    s.w.workspace.delete(s.path("e"))
    return s.w.workspace.get_status(s.path("e"))


def _me(s: Scratch) -> dict[str, Any]:
    me = s.w.current_user.me()
    return {
        "user_name": me.user_name,
        "active": me.active,
        "first_email": me.emails[0].value if me.emails else None,
    }


def _builtin(root: str) -> Any:
    def probe(s: Scratch) -> dict[str, Any]:
        path = root.replace("<user>", s.user)
        o = s.w.workspace.get_status(path)
        return {
            "object_type": o.object_type,
            "path": o.path,
            "has_id": isinstance(o.object_id, int),
        }

    return probe


def _builtin_delete(root: str) -> Any:
    return lambda s: s.w.workspace.delete(root.replace("<user>", s.user), recursive=True)


ALREADY = {"raises": "ResourceAlreadyExists", "error_code": "RESOURCE_ALREADY_EXISTS"}
NOT_IMPLEMENTED = {"raises": "NotImplemented", "error_code": "NOT_IMPLEMENTED"}


def _rows() -> list[Behaviour]:
    rows = [
        Behaviour(
            f"get-status/builtin-{name}",
            "workspace",
            f"get-status {root}",
            {"object_type": "DIRECTORY", "path": root, "has_id": True},
            _builtin(root),
            choice="`/Repos` | a plain folder; Git folders are not emulated"
            if root == "/Repos"
            else None,
        )
        for name, root in [
            ("root", "/"),
            ("users", "/Users"),
            ("home", "/Users/<user>"),
            ("shared", "/Shared"),
            ("repos", "/Repos"),
        ]
    ]
    rows += [
        Behaviour(
            "get-status/missing",
            "workspace",
            "get-status of a missing path",
            _missing(message="Path (<scratch>/nope) doesn't exist."),
            lambda s: s.w.workspace.get_status(s.path("nope")),
        ),
        Behaviour(
            "get-status/notebook-fields",
            "workspace",
            "upload a notebook, get-status",
            {
                "object_type": "NOTEBOOK",
                "language": "PYTHON",
                "resource_id_is_object_id": True,
                "size": len(HEADER) + len("\nprint(1)"),
                "modified_at_is_created_at": True,
            },
            _status_fields,
            choice="`size`, `created_at`, `modified_at` | on files **and** notebooks "
            "(`size` = stored bytes including the header); not on folders",
        ),
        Behaviour(
            "get-status/workspace-prefix",
            "workspace",
            "get-status /Workspace/<path> of an object",
            {"same_object": True, "path": "/Workspace<scratch>/nb.py"},
            _prefix,
        ),
        Behaviour(
            "get-status/duplicate-slashes",
            "workspace",
            "mkdirs a//b///c/, get-status a/b/c",
            {"object_type": "DIRECTORY", "path": "<scratch>/a/b", "language": None},
            lambda s: (
                s.w.workspace.mkdirs(s.path() + "//a///b/"),
                info(s, s.path("a/b")),
            )[1],
        ),
        Behaviour(
            "get-status/unique-ids",
            "workspace",
            "object ids of a folder and two notebooks in it",
            3,
            _unique_ids,
        ),
        Behaviour(
            "list/one-level",
            "workspace",
            "list a folder with a notebook and a subfolder",
            [["<scratch>/p/a.py", "NOTEBOOK"], ["<scratch>/p/sub", "DIRECTORY"]],
            _list_one_level,
        ),
        Behaviour(
            "list/empty-folder-body",
            "workspace",
            "GET workspace/list of an empty folder (raw body)",
            {},
            _list_empty_raw,
            choice="empty folder `list` body | `{}` with no `objects` key (the SDK accepts both)",
        ),
        Behaviour(
            "list/of-a-notebook",
            "workspace",
            "list a notebook's path",
            [["<scratch>/nb.py", "NOTEBOOK"]],
            _list_notebook,
        ),
        Behaviour(
            "list/missing",
            "workspace",
            "list a missing path",
            _missing(message="Path (<scratch>/missing) doesn't exist."),
            lambda s: list(s.w.workspace.list(s.path("missing"))),
        ),
        Behaviour(
            "list/recursive",
            "workspace",
            "SDK list(recursive=True)",
            ["<scratch>/r/a.py", "<scratch>/r/x/y/b.py"],
            _recursive,
        ),
        Behaviour(
            "list/workspace-prefix-on-children",
            "workspace",
            "list /Workspace/<folder>",
            ["/Workspace<scratch>/a.py"],
            _list_prefix,
        ),
        Behaviour(
            "list/notebooks-modified-after",
            "workspace",
            "list with notebooks_modified_after = an older notebook's modified_at",
            ["<scratch>/file.txt", "<scratch>/new.py"],
            _modified_after,
            choice="`notebooks_modified_after` | drops notebooks with `modified_at <=` the "
            "value; folders and files are always listed",
        ),
        Behaviour(
            "mkdirs/parents-and-idempotent",
            "workspace",
            "mkdirs a/b/c twice",
            {
                "same_id": True,
                "parent": {"object_type": "DIRECTORY", "path": "<scratch>/a", "language": None},
            },
            _mkdirs_idempotent,
        ),
        Behaviour(
            "mkdirs/through-a-notebook",
            "workspace",
            "mkdirs <notebook>/sub",
            {**ALREADY, "message": "<scratch>/nb.py already exists and it is not a folder"},
            _mkdirs_through_notebook,
        ),
        Behaviour(
            "import/source-with-language",
            "workspace",
            "upload etl.py (SOURCE, PYTHON) without a header",
            {
                "info": {
                    "object_type": "NOTEBOOK",
                    "path": "<scratch>/etl.py",
                    "language": "PYTHON",
                },
                "content": f"{HEADER}\nprint(1)",
            },
            _upload_source,
        ),
        Behaviour(
            "import/header-not-duplicated",
            "workspace",
            "upload a notebook that has its header",
            f"{HEADER}\nprint('first upload')",
            _no_double_header,
        ),
        Behaviour(
            "import/exists-without-overwrite",
            "workspace",
            "upload onto an existing notebook without overwrite",
            {**ALREADY, "message": "Path (<scratch>/nb.py) already exists."},
            _exists,
        ),
        Behaviour(
            "import/overwrite-keeps-object-id",
            "workspace",
            "upload overwrite=true onto a notebook",
            {"same_id": True, "modified_at_grew": True, "content": f"{HEADER}\n2"},
            _overwrite_keeps_id,
            choice="`object_id` on `overwrite=true` | kept; delete + import gives a new id",
        ),
        Behaviour(
            "import/delete-then-import-new-id",
            "workspace",
            "delete a notebook, upload it again",
            True,
            _delete_new_id,
        ),
        Behaviour(
            "import/missing-parent",
            "workspace",
            "upload into a missing folder",
            _missing(message="The parent folder (<scratch>/Views) does not exist."),
            lambda s: upload(s, "Views/nb.py", b"1"),
        ),
    ]
    for name, path in [("txt", "data.txt"), ("lower-r", "lower.r")]:
        rows.append(
            Behaviour(
                f"import/upload-source-without-language-{name}",
                "workspace",
                f"upload {path} (SOURCE, no language, not a zip)",
                {
                    "raises": "DatabricksError",
                    "error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Perhaps you forgot to specify the `format=ImportFormat.AUTO`. "
                    "The zip archive contains no items.",
                },
                lambda s, path=path: s.w.workspace.upload(s.path(path), b"not a zip"),
                choice='"The zip archive contains no items." | 400 `INVALID_PARAMETER_VALUE`. '
                'That is what makes `upload` give its "Perhaps you forgot…" error',
            )
        )
    return rows + _import_rows() + _export_delete_rows()


def _import_rows() -> list[Behaviour]:
    rows = [
        Behaviour(
            "import/json-source-without-language",
            "workspace",
            "import_ (JSON) SOURCE without language, not a zip",
            {
                "raises": "InvalidParameterValue",
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "The zip archive contains no items.",
            },
            lambda s: s.w.workspace.import_(
                s.path("x.txt"), content=b64(b"x"), format=ImportFormat.SOURCE
            ),
            choice='"The zip archive contains no items." | 400 `INVALID_PARAMETER_VALUE`',
        ),
        *_auto_rows(),
        Behaviour(
            "import/auto-ipynb",
            "workspace",
            "upload j.ipynb format=AUTO",
            {"object_type": "NOTEBOOK", "path": "<scratch>/j", "language": "PYTHON"},
            _ipynb_auto,
            choice="`AUTO` import of `.ipynb` | PYTHON notebook with the extension stripped",
        ),
        Behaviour(
            "import/jupyter",
            "workspace",
            "upload an ipynb format=JUPYTER, export SOURCE and JUPYTER",
            {
                "info": {"object_type": "NOTEBOOK", "path": "<scratch>/nb", "language": "PYTHON"},
                "source": f"{HEADER}\n# MAGIC %md\n# MAGIC # Title"
                "\n\n# COMMAND ----------\n\nx = 1\nprint(x)",
                "jupyter_cells": ["markdown", "code"],
            },
            _jupyter,
            choice="`JUPYTER` import path | kept as given, `.ipynb` included; language is "
            "always PYTHON",
        ),
        Behaviour(
            "import/raw",
            "workspace",
            "upload 256 bytes format=RAW",
            {
                "info": {"object_type": "FILE", "path": "<scratch>/blob.bin", "language": None},
                "same_bytes": True,
            },
            _raw,
        ),
    ]
    for fmt in (ImportFormat.DBC, ImportFormat.HTML, ImportFormat.R_MARKDOWN):
        rows.append(
            Behaviour(
                f"import/unsupported-{fmt.value.lower()}",
                "workspace",
                f"import_ format={fmt.value} of non-archive content",
                {
                    **NOT_IMPLEMENTED,
                    "message": f"Import format {fmt.value} is not supported by the emulator.",
                },
                _unsupported(fmt),
                choice="`DBC`, `HTML`, `R_MARKDOWN` | 501 `NOT_IMPLEMENTED`: not emulated",
            )
        )
    size = 10485761
    rows.append(
        Behaviour(
            "import/over-ten-megabytes",
            "workspace",
            "upload 10485761 bytes format=RAW",
            {
                "raises": "BadRequest",
                "error_code": "MAX_NOTEBOOK_SIZE_EXCEEDED",
                "message": f"File size imported is ({size} bytes), exceeded max size "
                "(10485760 bytes)",
            },
            lambda s: upload(s, "big.bin", b"x" * size, format=ImportFormat.RAW),
            choice="size limit | checked on import only, with status 400 and "
            "`MAX_NOTEBOOK_SIZE_EXCEEDED`",
        )
    )
    for name, first, second, target, was, now in [
        ("notebook-to-file", ImportFormat.SOURCE, ImportFormat.RAW, "x.py", "NOTEBOOK", "FILE"),
        ("file-to-notebook", ImportFormat.RAW, ImportFormat.SOURCE, "x.py", "FILE", "NOTEBOOK"),
        ("folder-to-file", None, ImportFormat.RAW, "dir", "DIRECTORY", "FILE"),
    ]:
        rows.append(
            Behaviour(
                f"import/overwrite-type-change-{name}",
                "workspace",
                f"upload overwrite=true {now} onto a {was}",
                {
                    **ALREADY,
                    "message": f"Path (<scratch>/{target}) already exists as a {was}; it "
                    f"cannot be overwritten by a {now}. Delete it first.",
                },
                _type_change(first, second, target),
                choice="overwrite with a different object type (or onto a folder) | 400 "
                "`RESOURCE_ALREADY_EXISTS`",
            )
        )
    rows += [
        Behaviour(
            "import/json-base64",
            "workspace",
            "import_ (JSON, base64) SOURCE SQL",
            "-- Databricks notebook source\nselect 1",
            _json_import,
        ),
        Behaviour(
            "import/workspace-prefix",
            "workspace",
            "upload to /Workspace/<path>",
            {"object_type": "NOTEBOOK", "path": "<scratch>/w.py", "language": "PYTHON"},
            _prefixed_import,
        ),
    ]
    return rows


def _export_delete_rows() -> list[Behaviour]:
    rows = [
        Behaviour(
            f"export/json-{ft}",
            "workspace",
            f"export (JSON) a {lang.value} notebook",
            {"file_type": ft, "content": f"{comment} Databricks notebook source\n1"},
            _export_json(lang),
            choice="`file_type` | `py`/`sql`/`scala`/`r` for notebooks, `ipynb` for JUPYTER, "
            "the extension for files",
        )
        for lang, ft, comment in [
            (Language.PYTHON, "py", "#"),
            (Language.SQL, "sql", "--"),
            (Language.SCALA, "scala", "//"),
            (Language.R, "r", "#"),
        ]
    ]
    rows += [
        Behaviour(
            "export/file-default-format",
            "workspace",
            "download and export a workspace file",
            {"download": '{"a": 1}', "content": '{"a": 1}', "file_type": "json"},
            _export_file,
        ),
        Behaviour(
            "export/missing",
            "workspace",
            "download a missing path",
            _missing(message="Path (<scratch>/missing) doesn't exist."),
            lambda s: download(s, "missing"),
        ),
        Behaviour(
            "export/folder-dbc",
            "workspace",
            "export a folder format=DBC",
            {**NOT_IMPLEMENTED, "message": "Export format DBC is not supported by the emulator."},
            lambda s: s.w.workspace.export(s.path(), format=ExportFormat.DBC),
            choice="`DBC`, `HTML`, `R_MARKDOWN` | 501 `NOT_IMPLEMENTED`: not emulated",
        ),
        Behaviour(
            "delete/notebook",
            "workspace",
            "delete a notebook, get-status it",
            _missing(message="Path (<scratch>/nb.py) doesn't exist."),
            _delete_notebook,
        ),
        Behaviour(
            "delete/non-empty-folder",
            "workspace",
            "delete a non-empty folder without recursive",
            {
                "raises": "BadRequest",
                "error_code": "DIRECTORY_NOT_EMPTY",
                "message": "Folder (<scratch>/p) is not empty",
            },
            _delete_not_empty,
        ),
        Behaviour(
            "delete/recursive",
            "workspace",
            "delete recursive=true, a sibling sharing the prefix survives",
            ["<scratch>/pq"],
            _delete_recursive,
        ),
        Behaviour(
            "delete/empty-folder",
            "workspace",
            "delete an empty folder without recursive",
            _missing(message="Path (<scratch>/e) doesn't exist."),
            _delete_empty,
        ),
        Behaviour(
            "delete/missing",
            "workspace",
            "delete a missing path",
            _missing(message="Path (<scratch>/missing) doesn't exist."),
            lambda s: s.w.workspace.delete(s.path("missing")),
        ),
        Behaviour(
            "scim/me",
            "workspace",
            "SCIM Me",
            {"user_name": "<user>", "active": True, "first_email": "<user>"},
            _me,
        ),
        Behaviour(
            "endpoint/move-does-not-exist",
            "workspace",
            "POST /api/2.0/workspace/move",
            {
                "raises": "NotFound",
                "error_code": "ENDPOINT_NOT_FOUND",
                "message": "No API found for 'POST /move'",
            },
            lambda s: s.w.api_client.do(
                "POST",
                "/api/2.0/workspace/move",
                body={"source_path": s.path("a"), "target": s.path("b")},
            ),
        ),
        Behaviour(
            "endpoint/wrong-method",
            "workspace",
            "GET /api/2.0/workspace/import",
            {
                "raises": "DatabricksError",
                "error_code": "METHOD_NOT_ALLOWED",
                "message": "Method GET is not allowed on /import",
            },
            lambda s: s.w.api_client.do("GET", "/api/2.0/workspace/import"),
            choice="wrong HTTP method | 405 `METHOD_NOT_ALLOWED`",
        ),
    ]
    rows += [
        Behaviour(
            f"delete/builtin-{name}",
            "workspace",
            f"delete {root} recursive=true",
            {
                "raises": "PermissionDenied",
                "error_code": "PERMISSION_DENIED",
                "message": f"Cannot delete the special folder ({root}).",
            },
            _builtin_delete(root),
            choice="deleting a built-in folder | 403 `PERMISSION_DENIED` "
            '"Cannot delete the special folder (/Shared)."',
            live=False,  # never delete, or try to delete, anything outside the scratch folder
        )
        for name, root in [
            ("root", "/"),
            ("users", "/Users"),
            ("home", "/Users/<user>"),
            ("shared", "/Shared"),
            ("repos", "/Repos"),
            ("workspace-shared", "/Workspace/Shared"),
        ]
    ]
    return rows


ROWS = _rows()
