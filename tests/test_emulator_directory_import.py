"""Directory import and export: the real SDK's `import_` (SOURCE, no language, a zip) and
`export` of a folder against the emulator, and the controls that make it refuse or land
differently. The layout is the emulator's choice (docs/emulator.md); these tests pin it.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    NotImplemented,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

from dbx_promote.emulator import Emulator, EmulatorControl

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


def make_zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def import_dir(w: WorkspaceClient, path: str, content: bytes, **kw: object) -> None:
    w.workspace.import_(
        path, content=base64.b64encode(content).decode(), format=ImportFormat.SOURCE, **kw
    )


def kinds(emu: Emulator, root: str) -> dict[str, tuple[str, str | None]]:
    return {p[len(root) :]: (i["object_type"], i["language"]) for p, i in emu.tree(root).items()}


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


def test_a_zip_imported_as_source_without_language_creates_the_folder(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    import_dir(workspace_client, "/Shared/proj", make_zip(EXPORT_LAYOUT))
    assert kinds(emulator, "/Shared/proj") == {
        "": ("DIRECTORY", None),
        "/etl": ("NOTEBOOK", "PYTHON"),
        "/q": ("NOTEBOOK", "SQL"),
        "/sub": ("DIRECTORY", None),
        "/sub/deep": ("NOTEBOOK", "SCALA"),
        "/sub/stats": ("NOTEBOOK", "R"),
        "/sub/nb": ("NOTEBOOK", "PYTHON"),
        "/empty": ("DIRECTORY", None),
    }
    assert emulator.read("/Shared/proj/etl") == PY
    info = workspace_client.workspace.get_status("/Shared/proj/q")
    assert info.object_type == ObjectType.NOTEBOOK and info.language == Language.SQL


def test_the_single_top_level_folder_stands_for_the_target_whatever_its_name(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    import_dir(workspace_client, "/Shared/a", make_zip({"other/x.py": PY}))
    import_dir(workspace_client, "/Shared/b", make_zip({"x.py": PY, "y/z.py": PY}))
    assert set(kinds(emulator, "/Shared/a")) == {"", "/x"}
    assert set(kinds(emulator, "/Shared/b")) == {"", "/x", "/y", "/y/z"}


def test_an_ipynb_entry_keeps_its_notebook_for_jupyter_export(
    workspace_client: WorkspaceClient,
) -> None:
    import_dir(workspace_client, "/Shared/p", make_zip({"p/nb.ipynb": IPYNB}))
    with workspace_client.workspace.download("/Shared/p/nb", format=ExportFormat.JUPYTER) as f:
        assert f.read() == IPYNB


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_import_onto_an_existing_name_is_resource_already_exists(
    workspace_client: WorkspaceClient, emulator: Emulator, overwrite: bool
) -> None:
    workspace_client.workspace.mkdirs("/Shared/proj")
    with pytest.raises(ResourceAlreadyExists) as exc:
        import_dir(
            workspace_client, "/Shared/proj", make_zip({"proj/x.py": PY}), overwrite=overwrite
        )
    assert str(exc.value) == "Path (/Shared/proj) already exists."
    assert kinds(emulator, "/Shared/proj") == {"": ("DIRECTORY", None)}


def test_a_directory_import_into_a_missing_parent_is_resource_does_not_exist(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(ResourceDoesNotExist):
        import_dir(workspace_client, "/Shared/no/proj", make_zip({"proj/x.py": PY}))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"p/readme.txt": b"hi"}, "The zip archive contains no items."),
        ({"p/inner.zip": make_zip({"x.py": PY}), "p/x.py": PY}, "Zip files within directories"),
        ({"../x.py": PY}, "outside its folder"),
    ],
)
def test_a_bad_archive_is_invalid_parameter_value_and_creates_nothing(
    workspace_client: WorkspaceClient, emulator: Emulator, entries: dict[str, bytes], message: str
) -> None:
    with pytest.raises(InvalidParameterValue) as exc:
        import_dir(workspace_client, "/Shared/p", make_zip(entries))
    assert message in str(exc.value)
    assert emulator.tree("/Shared/p") == {}


def test_a_directory_archive_over_ten_megabytes_is_max_notebook_size_exceeded(
    workspace_client: WorkspaceClient,
) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("p/x.py", PY + b"#" * 10_485_760)
    with pytest.raises(BadRequest) as exc:
        import_dir(workspace_client, "/Shared/p", out.getvalue())
    assert exc.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"


def test_a_source_export_of_a_folder_is_a_zip_that_imports_back_the_same_tree(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    w = workspace_client
    import_dir(w, "/Shared/proj", make_zip(EXPORT_LAYOUT))
    w.workspace.upload("/Shared/proj/sub/helper.py", b"x = 1\n", format=ImportFormat.AUTO)
    exported = base64.b64decode(
        w.workspace.export("/Shared/proj", format=ExportFormat.SOURCE).content
    )
    names = zipfile.ZipFile(io.BytesIO(exported)).namelist()
    assert "proj/" in names and "proj/sub/deep.scala" in names and "proj/sub/nb.py" in names
    assert "proj/sub/helper.py" not in names  # SOURCE skips files; AUTO carries them
    auto = base64.b64decode(w.workspace.export("/Shared/proj", format=ExportFormat.AUTO).content)
    assert "proj/sub/helper.py" in zipfile.ZipFile(io.BytesIO(auto)).namelist()

    import_dir(w, "/Shared/copy", exported)

    def hashes(root: str) -> dict[str, tuple[object, ...]]:
        return {
            p[len(root) :]: (i["object_type"], i["language"], i["sha256"])
            for p, i in emulator.tree(root).items()
            if i["object_type"] != "FILE"
        }

    assert hashes("/Shared/copy") == hashes("/Shared/proj")


def test_dbc_stays_not_implemented_for_folders(workspace_client: WorkspaceClient) -> None:
    with pytest.raises(NotImplemented):
        workspace_client.workspace.export("/Shared", format=ExportFormat.DBC)


def test_the_refuse_control_answers_400_and_creates_nothing(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    EmulatorControl(emulator.url).set_directory_import("refuse")
    with pytest.raises(BadRequest) as exc:
        import_dir(workspace_client, "/Shared/p", make_zip({"p/x.py": PY}))
    assert exc.value.error_code == "BAD_REQUEST"
    assert emulator.tree("/Shared/p") == {}
    workspace_client.workspace.upload("/Shared/single.py", PY)  # single imports still work


def test_the_drop_one_control_lands_every_notebook_but_the_last(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    emulator.set_directory_import("drop-one")
    import_dir(
        workspace_client, "/Shared/p", make_zip({"p/a.py": PY, "p/b/c.py": PY, "p/z.py": PY})
    )
    assert set(kinds(emulator, "/Shared/p")) == {"", "/a", "/b", "/b/c"}
    emulator.reset(settings=True)
    import_dir(workspace_client, "/Shared/p", make_zip({"p/a.py": PY}))
    assert "/Shared/p/a" in emulator.tree("/Shared/p")


def test_a_directory_import_is_one_counted_import_request(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    import_dir(workspace_client, "/Shared/p", make_zip({f"p/n{i}.py": PY for i in range(20)}))
    counters = emulator.counters()
    assert counters["by_endpoint"] == {"import": 1}
    assert [r["path"] for r in emulator.request_log()] == ["/Shared/p"]


def test_the_directory_import_mode_is_validated(emulator: Emulator) -> None:
    with pytest.raises(ValueError):
        emulator.set_directory_import("sometimes")
