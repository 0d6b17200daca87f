"""Conformance rows for importing and exporting a whole folder (jobs-permissions-api.md §3).

The archive layout is undocumented: most of these rows are the emulator's choices, and a
live run is what tells whether the service agrees.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

from databricks.sdk.service.workspace import ExportFormat, ImportFormat

from conformance_suite import Behaviour, Scratch, answer

PY = b"# Databricks notebook source\nprint(1)\n"
SQL = b"-- Databricks notebook source\nSELECT 1\n"
IPYNB = json.dumps(
    {
        "cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1"]}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
).encode()
EXPORT_LAYOUT = {
    "proj/": b"",
    "proj/etl.py": PY,
    "proj/q.sql": SQL,
    "proj/sub/": b"",
    "proj/sub/deep.scala": b"// Databricks notebook source\n1\n",
    "proj/sub/stats.r": b"# Databricks notebook source\n1\n",
    "proj/sub/nb.ipynb": IPYNB,
    "proj/helpers.py": b"def f():\n    return 1\n",
    "proj/data.json": b"{}",
    "proj/empty/": b"",
}

LAYOUT_CHOICE = (
    "directory archive layout (import and export) | `<folder>/<path>` entries with `name/` "
    "folder entries; the single top-level folder stands for the target folder on import, "
    "whatever its name"
)


def make_zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def import_dir(s: Scratch, rel: str, content: bytes, **kw: Any) -> None:
    s.w.workspace.import_(
        s.path(rel), content=base64.b64encode(content).decode(), format=ImportFormat.SOURCE, **kw
    )


def kinds(s: Scratch, rel: str) -> dict[str, list[Any]]:
    """{path under rel: [object type, language]} for the whole subtree, by SDK listings."""
    base = s.path(rel)
    out: dict[str, list[Any]] = {}
    todo = [base]
    while todo:
        for o in s.w.workspace.list(todo.pop()):
            out[str(o.path)[len(base) :]] = [o.object_type, o.language]
            if o.object_type is not None and o.object_type.value == "DIRECTORY":
                todo.append(str(o.path))
    return dict(sorted(out.items()))


def _layout(s: Scratch) -> dict[str, Any]:
    import_dir(s, "proj", make_zip(EXPORT_LAYOUT))
    with s.w.workspace.download(s.path("proj/etl")) as f:
        etl = bytes(f.read()).decode()
    return {"tree": kinds(s, "proj"), "etl": etl}


def _top_folder(s: Scratch) -> dict[str, Any]:
    import_dir(s, "a", make_zip({"other/x.py": PY}))
    import_dir(s, "b", make_zip({"x.py": PY, "y/z.py": PY}))
    return {"a": sorted(kinds(s, "a")), "b": sorted(kinds(s, "b"))}


def _ipynb(s: Scratch) -> bool:
    import_dir(s, "p", make_zip({"p/nb.ipynb": IPYNB}))
    with s.w.workspace.download(s.path("p/nb"), format=ExportFormat.JUPYTER) as f:
        return bytes(f.read()) == IPYNB


def _onto_existing(overwrite: bool) -> Any:
    def probe(s: Scratch) -> Any:
        s.w.workspace.mkdirs(s.path("proj"))
        error = answer(
            lambda: import_dir(s, "proj", make_zip({"proj/x.py": PY}), overwrite=overwrite)
        )
        return {"error": error, "left": kinds(s, "proj")}

    return probe


def _bad(entries: dict[str, bytes]) -> Any:
    def probe(s: Scratch) -> Any:
        error = answer(lambda: import_dir(s, "p", make_zip(entries)))
        return {
            "error": error,
            "created": sorted(str(o.path) for o in s.w.workspace.list(s.path())),
        }

    return probe


def _round_trip(s: Scratch) -> dict[str, Any]:
    import_dir(s, "proj", make_zip(EXPORT_LAYOUT))
    s.w.workspace.upload(s.path("proj/sub/helper.py"), b"x = 1\n", format=ImportFormat.AUTO)
    source = s.w.workspace.export(s.path("proj"), format=ExportFormat.SOURCE)
    auto = s.w.workspace.export(s.path("proj"), format=ExportFormat.AUTO)
    exported = base64.b64decode(source.content or "")
    import_dir(s, "copy", exported)
    notebooks = {k: v for k, v in kinds(s, "proj").items() if v[0].value != "FILE"}
    return {
        "file_type": source.file_type,
        "source_entries": sorted(zipfile.ZipFile(io.BytesIO(exported)).namelist()),
        "auto_has_files": "proj/sub/helper.py"
        in zipfile.ZipFile(io.BytesIO(base64.b64decode(auto.content or ""))).namelist(),
        "copy_is_the_same_tree": kinds(s, "copy") == notebooks,
    }


def _rows() -> list[Behaviour]:
    nb, folder = "NOTEBOOK", "DIRECTORY"
    rows = [
        Behaviour(
            "dir-import/export-layout",
            "directory-import",
            "import_ SOURCE without language, a zip in the export layout",
            {
                "tree": {
                    "/empty": [folder, None],
                    "/etl": [nb, "PYTHON"],
                    "/q": [nb, "SQL"],
                    "/sub": [folder, None],
                    "/sub/deep": [nb, "SCALA"],
                    "/sub/nb": [nb, "PYTHON"],
                    "/sub/stats": [nb, "R"],
                },
                "etl": PY.decode(),
            },
            _layout,
            choice=LAYOUT_CHOICE + "; non-notebook entries skipped; empty folder entries "
            "create folders",
        ),
        Behaviour(
            "dir-import/top-level-folder-name",
            "directory-import",
            "import_ zips with another top folder name, and with none",
            {"a": ["/x"], "b": ["/x", "/y", "/y/z"]},
            _top_folder,
            choice=LAYOUT_CHOICE,
        ),
        Behaviour(
            "dir-import/ipynb-entry",
            "directory-import",
            "import_ a zip holding an .ipynb, export it JUPYTER",
            True,
            _ipynb,
            choice="`.ipynb` entries in a directory import | PYTHON notebooks without the "
            "extension, kept for `JUPYTER` export",
        ),
    ]
    for overwrite in (False, True):
        rows.append(
            Behaviour(
                f"dir-import/onto-existing-overwrite-{str(overwrite).lower()}",
                "directory-import",
                f"import_ a zip onto an existing folder, overwrite={overwrite}",
                {
                    "error": {
                        "raises": "ResourceAlreadyExists",
                        "error_code": "RESOURCE_ALREADY_EXISTS",
                        "message": "Path (<scratch>/proj) already exists.",
                    },
                    "left": {},
                },
                _onto_existing(overwrite),
                choice="directory import onto an existing name | 400 `RESOURCE_ALREADY_EXISTS` "
                "with or without `overwrite`; never a merge",
            )
        )
    rows.append(
        Behaviour(
            "dir-import/missing-parent",
            "directory-import",
            "import_ a zip into a missing folder",
            {
                "raises": "ResourceDoesNotExist",
                "error_code": "RESOURCE_DOES_NOT_EXIST",
                "message": "The parent folder (<scratch>/no) does not exist.",
            },
            lambda s: import_dir(s, "no/proj", make_zip({"proj/x.py": PY})),
        )
    )
    return rows + _bad_rows()


def _bad_rows() -> list[Behaviour]:
    bad = {"raises": "InvalidParameterValue", "error_code": "INVALID_PARAMETER_VALUE"}
    rows = [
        Behaviour(
            f"dir-import/bad-archive-{name}",
            "directory-import",
            f"import_ a zip with {what}",
            {"error": {**bad, "message": message}, "created": []},
            _bad(entries),
            choice=choice,
        )
        for name, what, entries, message, choice in [
            (
                "no-notebooks",
                "no notebook in it",
                {"p/readme.txt": b"hi"},
                "The zip archive contains no items.",
                '"The zip archive contains no items." | 400 `INVALID_PARAMETER_VALUE`',
            ),
            (
                "nested-zip",
                "a zip inside",
                {"p/inner.zip": make_zip({"x.py": PY}), "p/x.py": PY},
                "Zip files within directories are not supported.",
                None,
            ),
            (
                "escaping-entry",
                "an entry outside its folder",
                {"../x.py": PY},
                "The zip archive has an entry outside its folder: '../x.py'.",
                "bad values | 400 `INVALID_PARAMETER_VALUE`",
            ),
        ]
    ]
    big = make_zip({"p/x.py": PY + b"#" * 10_485_760}, zipfile.ZIP_STORED)
    rows += [
        Behaviour(
            "dir-import/over-ten-megabytes",
            "directory-import",
            "import_ a zip over 10 MB",
            {
                "raises": "BadRequest",
                "error_code": "MAX_NOTEBOOK_SIZE_EXCEEDED",
                "message": f"File size imported is ({len(big)} bytes), exceeded max size "
                "(10485760 bytes)",
            },
            lambda s: import_dir(s, "p", big),
            choice="limits of a directory import | 10 MB on the archive as sent",
        ),
        Behaviour(
            "dir-export/source-round-trip",
            "directory-import",
            "export a folder SOURCE and AUTO; import the SOURCE zip back",
            {
                "file_type": "zip",
                "source_entries": [
                    "proj/",
                    "proj/empty/",
                    "proj/etl.py",
                    "proj/q.sql",
                    "proj/sub/",
                    "proj/sub/deep.scala",
                    "proj/sub/nb.py",
                    "proj/sub/stats.r",
                ],
                "auto_has_files": True,
                "copy_is_the_same_tree": True,
            },
            _round_trip,
            choice="`file_type` of a folder export | `zip`; SOURCE export skips files, AUTO "
            "carries them",
        ),
    ]
    return rows


ROWS = _rows()
