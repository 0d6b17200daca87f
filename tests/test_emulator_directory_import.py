"""Directory import: the controls that make the emulator refuse a directory import or land
it differently. What a directory import and a folder export do are conformance rows
(tests/conformance_directory.py), which also run against a real workspace.
"""

from __future__ import annotations

import base64
import io
import zipfile

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
)
from databricks.sdk.service.workspace import ImportFormat

from dbx_promote.emulator import Emulator, EmulatorControl

PY = b"# Databricks notebook source\nprint(1)\n"


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
