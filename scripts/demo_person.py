"""What a person does in the workspace UI, for `make demo`: read, try to write, grant.

    python scripts/demo_person.py read PATH            # export a notebook
    python scripts/demo_person.py write PATH           # try to overwrite it
    python scripts/demo_person.py grant PATH USER LEVEL  # a direct grant on one notebook

The person is whoever DATABRICKS_TOKEN signs in as (the emulator's --principal); it talks
to the workspace through the real databricks-sdk. A refusal is printed and exits 0: in
the demo a refused write is the point. No token is printed.
"""

from __future__ import annotations

import base64
import sys

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError
from databricks.sdk.service.workspace import (
    ExportFormat,
    ImportFormat,
    Language,
    WorkspaceObjectAccessControlRequest,
    WorkspaceObjectPermissionLevel,
)


def main(argv: list[str]) -> int:
    w = WorkspaceClient()
    me = w.current_user.me().user_name
    action, path = argv[0], argv[1]
    try:
        if action == "read":
            content = base64.b64decode(
                w.workspace.export(path, format=ExportFormat.SOURCE).content or ""
            )
            first = content.decode().splitlines()[0] if content else ""
            print(f"{me} exported {path} ({len(content)} bytes; first line: {first})")
        elif action == "write":
            w.workspace.import_(
                path,
                content=base64.b64encode(b"# Databricks notebook source\nprint('quick fix')\n")
                .decode(),
                format=ImportFormat.SOURCE,
                language=Language.PYTHON,
                overwrite=True,
            )
            print(f"{me} overwrote {path}")
        elif action == "grant":
            user, level = argv[2], argv[3]
            info = w.workspace.get_status(path)
            w.workspace.update_permissions(
                "notebooks",
                str(info.object_id),
                access_control_list=[
                    WorkspaceObjectAccessControlRequest(
                        user_name=user, permission_level=WorkspaceObjectPermissionLevel(level)
                    )
                ],
            )
            print(f"{me} granted {user} {level} on {path} by hand")
        else:
            print(f"unknown action {action!r}", file=sys.stderr)
            return 2
    except DatabricksError as exc:
        # The SDK appends its config to the message (token masked): the service's part only.
        print(f"refused ({exc.error_code}): {str(exc).split(' Config: ')[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
