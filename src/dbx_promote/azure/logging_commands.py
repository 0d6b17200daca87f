"""Azure Pipelines logging commands (``##vso[...]``).

Pure string functions: they return the line to print; ``cli.py`` prints it. The escaping
follows the agent (microsoft/azure-pipelines-agent ``CommandStringConvertor``) and
azure-pipelines-task-lib: ``%`` → ``%AZP25``, CR → ``%0D``, LF → ``%0A`` in data and
properties; properties additionally ``;`` → ``%3B`` and ``]`` → ``%5D``, because ``;``
separates properties and ``]`` ends the property list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

# The summary Markdown is shared with GitHub Actions; kept importable from here.
from dbx_promote.ci.markdown import SUMMARY_LIST_CAP, plan_summary_markdown

IssueType = Literal["error", "warning"]


def escape_data(value: object) -> str:
    """Escape the message part of a logging command (after the closing ``]``).

    ``%`` must go first: otherwise the ``%`` of ``%0A`` would be escaped again.
    """
    return str(value).replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: object) -> str:
    """Escape a property value (``key=value;`` inside the brackets)."""
    return escape_data(value).replace("]", "%5D").replace(";", "%3B")


def _command(area_action: str, properties: Mapping[str, object], data: object = "") -> str:
    props = "".join(
        f"{key}={escape_property(value)};" for key, value in properties.items() if value is not None
    )
    head = f"##vso[{area_action}{' ' + props if props else ''}]"
    return head + escape_data(data)


def log_issue(
    type: IssueType,
    message: str,
    *,
    source_path: str | None = None,
    line: int | None = None,
    code: str | None = None,
) -> str:
    """``##vso[task.logissue type=error|warning;...]message``.

    :param type: ``"error"`` or ``"warning"``.
    :param message: the issue text; newlines are kept (escaped), the agent shows them.
    :param source_path: optional file the issue is about (``sourcepath``).
    :param line: optional line number in ``source_path`` (``linenumber``).
    :param code: optional error/warning code.
    :raises ValueError: for any other ``type``.
    """
    if type not in ("error", "warning"):
        raise ValueError(f"issue type must be 'error' or 'warning', not {type!r}")
    props: dict[str, object] = {
        "type": type,
        "sourcepath": source_path,
        "linenumber": line,
        "code": code,
    }
    return _command("task.logissue", props, message)


def group_start(title: str) -> str:
    """Start a collapsible section in the run log (``##[group]title``)."""
    # ##[group] is a formatting command: only line breaks can break it.
    return "##[group]" + " ".join(str(title).splitlines())


def group_end() -> str:
    """End the section opened by :func:`group_start`."""
    return "##[endgroup]"


def upload_summary(path: str | os.PathLike[str]) -> str:
    """Attach a Markdown file to the run's summary tab (``##vso[task.uploadsummary]``).

    :param path: absolute path of the Markdown file; it must exist until the step ends.
    """
    return _command("task.uploadsummary", {}, os.fspath(path))


def add_build_tag(tag: str) -> str:
    """Tag the run (``##vso[build.addbuildtag]tag``), e.g. with the deployed version."""
    return _command("build.addbuildtag", {}, tag)


def set_variable(name: str, value: str, *, is_output: bool = False, is_secret: bool = False) -> str:
    """``##vso[task.setvariable variable=name;isOutput=...;issecret=...]value``.

    :param name: variable name (later steps see it as ``$(name)``; output variables as
        ``$(step.name)`` or ``dependencies...``).
    :param value: the value; escaped so a newline cannot start a new command.
    :param is_output: make it an output variable (usable by later jobs/stages).
    :param is_secret: mask it in logs.
    """
    props: dict[str, object] = {"variable": name}
    if is_output:
        props["isOutput"] = "true"
    if is_secret:
        props["issecret"] = "true"
    return _command("task.setvariable", props, value)


def in_pipeline(env: Mapping[str, str] | None = None) -> bool:
    """True when running on an Azure Pipelines agent (``TF_BUILD=True``, any case)."""
    source = os.environ if env is None else env
    return source.get("TF_BUILD", "").lower() == "true"


__all__ = [
    "SUMMARY_LIST_CAP",
    "add_build_tag",
    "escape_data",
    "escape_property",
    "group_end",
    "group_start",
    "in_pipeline",
    "log_issue",
    "plan_summary_markdown",
    "set_variable",
    "upload_summary",
]
