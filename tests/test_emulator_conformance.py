"""The real databricks-sdk against the emulator: every endpoint of workspace-api.md §1.

Each test states one behaviour of the service and the SDK exception it maps to.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    InvalidParameterValue,
    NotFound,
    NotImplemented,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceConflict,
    ResourceDoesNotExist,
)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

from dbx_promote.emulator import Emulator

USER = "emulator@example.com"
PY_HEADER = b"# Databricks notebook source"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def download(w: WorkspaceClient, path: str, fmt: ExportFormat | None = None) -> bytes:
    with w.workspace.download(path, format=fmt) as f:
        return f.read()


# --- get-status ------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["/", "/Users", f"/Users/{USER}", "/Shared", "/Repos"])
def test_builtin_roots_exist_as_directories(workspace_client: WorkspaceClient, root: str) -> None:
    info = workspace_client.workspace.get_status(root)
    assert info.object_type == ObjectType.DIRECTORY
    assert info.path == root
    assert isinstance(info.object_id, int)


def test_get_status_of_missing_path_is_resource_does_not_exist(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(ResourceDoesNotExist) as exc:
        workspace_client.workspace.get_status("/Shared/nope")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert str(exc.value) == "Path (/Shared/nope) doesn't exist."


def test_get_status_of_notebook_has_all_object_info_fields(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.upload("/Shared/nb.py", b"print(1)")
    info = workspace_client.workspace.get_status("/Shared/nb.py")
    assert info.object_type == ObjectType.NOTEBOOK
    assert info.language == Language.PYTHON
    assert info.path == "/Shared/nb.py"
    assert info.resource_id == str(info.object_id)
    assert info.size == len(PY_HEADER + b"\nprint(1)")
    assert info.created_at is not None and info.modified_at == info.created_at


def test_workspace_prefix_names_the_same_object_and_is_echoed(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.upload("/Shared/nb.py", b"print(1)")
    plain = workspace_client.workspace.get_status("/Shared/nb.py")
    prefixed = workspace_client.workspace.get_status("/Workspace/Shared/nb.py")
    assert prefixed.object_id == plain.object_id
    assert prefixed.path == "/Workspace/Shared/nb.py"


def test_duplicate_slashes_are_collapsed(workspace_client: WorkspaceClient) -> None:
    workspace_client.workspace.mkdirs("/Shared//a///b/")
    assert workspace_client.workspace.get_status("/Shared/a/b").path == "/Shared/a/b"


def test_object_ids_are_unique_including_directories(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.mkdirs("/Shared/d")
    workspace_client.workspace.upload("/Shared/d/a.py", b"1")
    workspace_client.workspace.upload("/Shared/d/b.py", b"2")
    ids = [o.object_id for o in workspace_client.workspace.list("/Shared/d")]
    ids.append(workspace_client.workspace.get_status("/Shared/d").object_id)
    assert len(set(ids)) == 3


# --- list ------------------------------------------------------------------------------


def test_list_returns_one_level_with_directories(workspace_client: WorkspaceClient) -> None:
    w = workspace_client
    w.workspace.mkdirs("/Shared/p/sub")
    w.workspace.upload("/Shared/p/a.py", b"1")
    w.workspace.upload("/Shared/p/sub/deep.py", b"2")
    got = {(o.path, o.object_type) for o in w.workspace.list("/Shared/p")}
    assert got == {("/Shared/p/a.py", ObjectType.NOTEBOOK), ("/Shared/p/sub", ObjectType.DIRECTORY)}


def test_list_of_empty_directory_is_an_empty_body(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    workspace_client.workspace.mkdirs("/Shared/empty")
    assert list(workspace_client.workspace.list("/Shared/empty")) == []
    raw = workspace_client.api_client.do(
        "GET", "/api/2.0/workspace/list", query={"path": "/Shared/empty"}
    )
    assert raw == {}


def test_list_of_a_notebook_gives_the_notebook_itself(workspace_client: WorkspaceClient) -> None:
    workspace_client.workspace.upload("/Shared/nb.py", b"1")
    [only] = list(workspace_client.workspace.list("/Shared/nb.py"))
    assert only.path == "/Shared/nb.py" and only.object_type == ObjectType.NOTEBOOK


def test_list_of_missing_path_is_resource_does_not_exist(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(ResourceDoesNotExist):
        list(workspace_client.workspace.list("/Shared/missing"))


def test_recursive_list_yields_only_non_directories(workspace_client: WorkspaceClient) -> None:
    w = workspace_client
    w.workspace.mkdirs("/Shared/r/x/y")
    w.workspace.upload("/Shared/r/a.py", b"1")
    w.workspace.upload("/Shared/r/x/y/b.py", b"2")
    got = sorted(str(o.path) for o in w.workspace.list("/Shared/r", recursive=True))
    assert got == ["/Shared/r/a.py", "/Shared/r/x/y/b.py"]


def test_list_echoes_the_workspace_prefix_on_children(workspace_client: WorkspaceClient) -> None:
    workspace_client.workspace.upload("/Shared/a.py", b"1")
    paths = [o.path for o in workspace_client.workspace.list("/Workspace/Shared")]
    assert paths == ["/Workspace/Shared/a.py"]


def test_list_notebooks_modified_after_filters_older_notebooks(
    workspace_client: WorkspaceClient,
) -> None:
    w = workspace_client
    w.workspace.upload("/Shared/old.py", b"1")
    cutoff = w.workspace.get_status("/Shared/old.py").modified_at
    w.workspace.upload("/Shared/new.py", b"2")
    w.workspace.upload("/Shared/file.txt", b"x", format=ImportFormat.AUTO)
    got = {o.path for o in w.workspace.list("/Shared", notebooks_modified_after=cutoff)}
    assert got == {"/Shared/new.py", "/Shared/file.txt"}


# --- mkdirs ----------------------------------------------------------------------------


def test_mkdirs_creates_every_missing_parent_and_is_idempotent(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.mkdirs("/Shared/a/b/c")
    first = workspace_client.workspace.get_status("/Shared/a/b/c").object_id
    workspace_client.workspace.mkdirs("/Shared/a/b/c")
    assert workspace_client.workspace.get_status("/Shared/a/b/c").object_id == first
    assert workspace_client.workspace.get_status("/Shared/a").object_type == ObjectType.DIRECTORY


def test_mkdirs_through_a_notebook_is_resource_already_exists(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.upload("/Shared/nb.py", b"1")
    with pytest.raises(ResourceAlreadyExists) as exc:
        workspace_client.workspace.mkdirs("/Shared/nb.py/sub")
    assert isinstance(exc.value, ResourceConflict) and not isinstance(exc.value, BadRequest)
    assert "already exists and it is not a folder" in str(exc.value)


# --- import: upload (multipart) and import_ (JSON) ---------------------------------------


def test_upload_source_with_language_makes_notebook_at_exact_path_with_header(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.upload("/Shared/etl.py", b"print(1)")
    assert workspace_client.workspace.get_status("/Shared/etl.py").language == Language.PYTHON
    assert download(workspace_client, "/Shared/etl.py") == PY_HEADER + b"\nprint(1)"


def test_upload_does_not_duplicate_an_existing_header(workspace_client: WorkspaceClient) -> None:
    content = b"# Databricks notebook source\nprint('first upload')"
    workspace_client.workspace.upload("/Shared/h.py", content)
    assert download(workspace_client, "/Shared/h.py") == content


def test_upload_existing_without_overwrite_is_resource_already_exists(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.upload("/Shared/nb.py", b"1")
    with pytest.raises(ResourceAlreadyExists) as exc:
        workspace_client.workspace.upload("/Shared/nb.py", b"2")
    assert str(exc.value) == "Path (/Shared/nb.py) already exists."


def test_overwrite_keeps_object_id_and_bumps_modified_at(
    workspace_client: WorkspaceClient,
) -> None:
    w = workspace_client
    w.workspace.upload("/Shared/nb.py", b"1")
    before = w.workspace.get_status("/Shared/nb.py")
    w.workspace.upload("/Shared/nb.py", b"2", overwrite=True)
    after = w.workspace.get_status("/Shared/nb.py")
    assert after.object_id == before.object_id
    assert after.modified_at is not None and before.modified_at is not None
    assert after.modified_at > before.modified_at
    assert download(w, "/Shared/nb.py").endswith(b"\n2")


def test_delete_then_import_gives_a_new_object_id(workspace_client: WorkspaceClient) -> None:
    w = workspace_client
    w.workspace.upload("/Shared/nb.py", b"1")
    first = w.workspace.get_status("/Shared/nb.py").object_id
    w.workspace.delete("/Shared/nb.py")
    w.workspace.upload("/Shared/nb.py", b"1")
    assert w.workspace.get_status("/Shared/nb.py").object_id != first


def test_import_into_missing_parent_is_resource_does_not_exist(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(ResourceDoesNotExist) as exc:
        workspace_client.workspace.upload("/Shared/Views/nb.py", b"1")
    assert str(exc.value) == "The parent folder (/Shared/Views) does not exist."


@pytest.mark.parametrize("path", ["/Shared/data.txt", "/Shared/lower.r"])
def test_upload_source_without_language_is_the_perhaps_you_forgot_error(
    workspace_client: WorkspaceClient, path: str
) -> None:
    with pytest.raises(DatabricksError) as exc:
        workspace_client.workspace.upload(path, b"not a zip")
    assert type(exc.value) is DatabricksError
    assert str(exc.value).startswith("Perhaps you forgot to specify the `format=ImportFormat.AUTO`")
    assert "The zip archive contains no items." in str(exc.value)


def test_import_json_source_without_language_is_invalid_parameter_value(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(InvalidParameterValue) as exc:
        workspace_client.workspace.import_(
            "/Shared/x.txt", content=b64(b"x"), format=ImportFormat.SOURCE
        )
    assert isinstance(exc.value, BadRequest)


AUTO_CASES = [
    # (uploaded path, content, resulting path, type, language)
    ("/Shared/a.py", b"# Databricks notebook source\nx=1", "/Shared/a", "NOTEBOOK", "PYTHON"),
    ("/Shared/b.py", b"x=1", "/Shared/b.py", "FILE", None),
    ("/Shared/c", b"# Databricks notebook source\nx=1", "/Shared/c", "FILE", None),
    ("/Shared/d.sql", b"-- Databricks notebook source\nselect 1", "/Shared/d", "NOTEBOOK", "SQL"),
    ("/Shared/e.scala", b"// Databricks notebook source\n1", "/Shared/e", "NOTEBOOK", "SCALA"),
    ("/Shared/f.r", b"# Databricks notebook source\n1", "/Shared/f", "NOTEBOOK", "R"),
    ("/Shared/G.PY", b"# Databricks notebook source\n1", "/Shared/G", "NOTEBOOK", "PYTHON"),
    ("/Shared/h.sql", b"# Databricks notebook source\n1", "/Shared/h.sql", "FILE", None),
    ("/Shared/i.json", b"{}", "/Shared/i.json", "FILE", None),
]


@pytest.mark.parametrize(("path", "content", "result", "otype", "language"), AUTO_CASES)
def test_auto_import_uses_extension_and_header(
    workspace_client: WorkspaceClient,
    emulator: Emulator,
    path: str,
    content: bytes,
    result: str,
    otype: str,
    language: str | None,
) -> None:
    workspace_client.workspace.upload(path, content, format=ImportFormat.AUTO)
    info = workspace_client.workspace.get_status(result)
    assert info.object_type == ObjectType(otype)
    assert (info.language.value if info.language else None) == language
    assert emulator.read(result) == content


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


def test_auto_import_of_ipynb_makes_python_notebook_without_extension(
    workspace_client: WorkspaceClient,
) -> None:
    nb = notebook_json(("code", "x = 1"))
    workspace_client.workspace.upload("/Shared/j.ipynb", nb, format=ImportFormat.AUTO)
    info = workspace_client.workspace.get_status("/Shared/j")
    assert info.object_type == ObjectType.NOTEBOOK and info.language == Language.PYTHON


def test_jupyter_import_exports_as_python_source_and_as_ipynb(
    workspace_client: WorkspaceClient,
) -> None:
    nb = notebook_json(("markdown", "# Title"), ("code", "x = 1\nprint(x)"))
    w = workspace_client
    w.workspace.upload("/Shared/nb", nb, format=ImportFormat.JUPYTER)
    assert w.workspace.get_status("/Shared/nb").language == Language.PYTHON
    source = download(w, "/Shared/nb")
    assert source == (
        b"# Databricks notebook source\n# MAGIC %md\n# MAGIC # Title"
        b"\n\n# COMMAND ----------\n\nx = 1\nprint(x)"
    )
    exported = json.loads(download(w, "/Shared/nb", ExportFormat.JUPYTER))
    assert [c["cell_type"] for c in exported["cells"]] == ["markdown", "code"]


def test_raw_import_makes_a_file_with_exact_bytes(workspace_client: WorkspaceClient) -> None:
    data = bytes(range(256))
    workspace_client.workspace.upload("/Shared/blob.bin", data, format=ImportFormat.RAW)
    assert workspace_client.workspace.get_status("/Shared/blob.bin").object_type == ObjectType.FILE
    assert download(workspace_client, "/Shared/blob.bin") == data


@pytest.mark.parametrize("fmt", [ImportFormat.DBC, ImportFormat.HTML, ImportFormat.R_MARKDOWN])
def test_unsupported_import_formats_are_not_implemented(
    workspace_client: WorkspaceClient, fmt: ImportFormat
) -> None:
    with pytest.raises(NotImplemented):
        workspace_client.workspace.import_("/Shared/x", content=b64(b"x"), format=fmt)


def test_import_over_ten_megabytes_is_max_notebook_size_exceeded(
    workspace_client: WorkspaceClient,
) -> None:
    size = 10485761
    with pytest.raises(BadRequest) as exc:
        workspace_client.workspace.upload("/Shared/big.bin", b"x" * size, format=ImportFormat.RAW)
    assert exc.value.error_code == "MAX_NOTEBOOK_SIZE_EXCEEDED"
    assert f"({size} bytes), exceeded max size (10485760 bytes)" in str(exc.value)


@pytest.mark.parametrize(
    ("first_fmt", "second_fmt", "target"),
    [
        (ImportFormat.SOURCE, ImportFormat.RAW, "/Shared/x.py"),  # notebook -> file
        (ImportFormat.RAW, ImportFormat.SOURCE, "/Shared/x.py"),  # file -> notebook
        (None, ImportFormat.RAW, "/Shared/dir"),  # directory -> file
    ],
)
def test_overwrite_with_a_different_object_type_is_resource_already_exists(
    workspace_client: WorkspaceClient,
    first_fmt: ImportFormat | None,
    second_fmt: ImportFormat,
    target: str,
) -> None:
    w = workspace_client
    if first_fmt is None:
        w.workspace.mkdirs(target)
    else:
        w.workspace.upload(target, b"1", format=first_fmt, language=Language.PYTHON)
    with pytest.raises(ResourceAlreadyExists):
        w.workspace.upload(
            target, b"2", format=second_fmt, language=Language.PYTHON, overwrite=True
        )


def test_import_json_base64_creates_notebook(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    workspace_client.workspace.import_(
        "/Shared/q.sql", content=b64(b"select 1"), format=ImportFormat.SOURCE, language=Language.SQL
    )
    assert emulator.read("/Shared/q.sql") == b"-- Databricks notebook source\nselect 1"


def test_import_with_workspace_prefix_lands_on_the_same_tree(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    workspace_client.workspace.upload("/Workspace/Shared/w.py", b"1")
    assert "/Shared/w.py" in emulator.tree("/Shared")


# --- export ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "file_type"),
    [(Language.PYTHON, "py"), (Language.SQL, "sql"), (Language.SCALA, "scala"), (Language.R, "r")],
)
def test_export_json_gives_base64_content_and_file_type(
    workspace_client: WorkspaceClient, language: Language, file_type: str
) -> None:
    w = workspace_client
    w.workspace.upload("/Shared/nb", b"1", language=language)
    resp = w.workspace.export("/Shared/nb")
    assert resp.file_type == file_type
    assert resp.content is not None
    assert base64.b64decode(resp.content).endswith(b"Databricks notebook source\n1")


def test_export_of_a_file_with_default_format_gives_raw_bytes(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.upload("/Shared/conf.json", b'{"a": 1}', format=ImportFormat.AUTO)
    assert download(workspace_client, "/Shared/conf.json") == b'{"a": 1}'
    resp = workspace_client.workspace.export("/Shared/conf.json")
    assert resp.content == b64(b'{"a": 1}') and resp.file_type == "json"


def test_export_of_missing_path_is_resource_does_not_exist(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(ResourceDoesNotExist):
        download(workspace_client, "/Shared/missing")


def test_export_of_a_directory_as_dbc_is_not_implemented(workspace_client: WorkspaceClient) -> None:
    with pytest.raises(NotImplemented):
        workspace_client.workspace.export("/Shared", format=ExportFormat.DBC)


# --- delete ----------------------------------------------------------------------------


def test_delete_removes_a_notebook(workspace_client: WorkspaceClient) -> None:
    workspace_client.workspace.upload("/Shared/nb.py", b"1")
    workspace_client.workspace.delete("/Shared/nb.py")
    with pytest.raises(ResourceDoesNotExist):
        workspace_client.workspace.get_status("/Shared/nb.py")


def test_delete_of_non_empty_folder_without_recursive_is_directory_not_empty(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.mkdirs("/Shared/p/q")
    with pytest.raises(BadRequest) as exc:
        workspace_client.workspace.delete("/Shared/p")
    assert exc.value.error_code == "DIRECTORY_NOT_EMPTY"
    assert str(exc.value) == "Folder (/Shared/p) is not empty"


def test_recursive_delete_removes_the_subtree(
    workspace_client: WorkspaceClient, emulator: Emulator
) -> None:
    w = workspace_client
    w.workspace.mkdirs("/Shared/p/q")
    w.workspace.upload("/Shared/p/q/nb.py", b"1")
    w.workspace.mkdirs("/Shared/pq")  # a sibling sharing the prefix survives
    w.workspace.delete("/Shared/p", recursive=True)
    assert sorted(emulator.tree("/Shared")) == ["/Shared", "/Shared/pq"]


def test_delete_of_empty_folder_without_recursive_succeeds(
    workspace_client: WorkspaceClient,
) -> None:
    workspace_client.workspace.mkdirs("/Shared/e")
    workspace_client.workspace.delete("/Shared/e")
    with pytest.raises(ResourceDoesNotExist):
        workspace_client.workspace.get_status("/Shared/e")


def test_delete_of_missing_path_is_resource_does_not_exist(
    workspace_client: WorkspaceClient,
) -> None:
    with pytest.raises(ResourceDoesNotExist):
        workspace_client.workspace.delete("/Shared/missing")


@pytest.mark.parametrize(
    "root", ["/", "/Users", f"/Users/{USER}", "/Shared", "/Repos", "/Workspace/Shared"]
)
def test_builtin_roots_cannot_be_deleted(workspace_client: WorkspaceClient, root: str) -> None:
    with pytest.raises(PermissionDenied) as exc:
        workspace_client.workspace.delete(root, recursive=True)
    assert exc.value.error_code == "PERMISSION_DENIED"


# --- other endpoints ---------------------------------------------------------------------


def test_scim_me_gives_the_configured_user(workspace_client: WorkspaceClient) -> None:
    me = workspace_client.current_user.me()
    assert me.user_name == USER and me.active is True
    assert me.emails and me.emails[0].value == USER


def test_host_metadata_gives_workspace_id_without_a_warning(
    emulator: Emulator,
    workspace_client_factory: Callable[[str], WorkspaceClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="databricks.sdk"):
        w = workspace_client_factory(emulator.url)
    assert w.config.workspace_id == "424242"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert emulator.counters()["total"] == 0  # the probe is not counted


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/2.0/workspace/move"), ("POST", "/api/2.0/workspace/rename")],
)
def test_move_and_rename_do_not_exist(
    workspace_client: WorkspaceClient, method: str, path: str
) -> None:
    with pytest.raises(NotFound) as exc:
        workspace_client.api_client.do(method, path, body={"source_path": "/a", "target": "/b"})
    assert exc.value.error_code == "ENDPOINT_NOT_FOUND"


def test_wrong_method_is_405_in_error_shape(workspace_client: WorkspaceClient) -> None:
    with pytest.raises(DatabricksError) as exc:
        workspace_client.api_client.do("GET", "/api/2.0/workspace/import")
    assert exc.value.error_code == "METHOD_NOT_ALLOWED"
