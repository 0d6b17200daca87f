"""GitHub Actions (``GITHUB_ACTIONS=true``): workflow commands and the runner's files.

- Annotations are workflow commands, ``::error file=F,line=N,title=T::message``. The runner
  reads them from standard output and standard error alike; we write them to standard
  error so that standard output stays data (``--output json | jq``). Escaping follows
  @actions/core ``command.ts`` (and the runner's ``ActionCommand`` unescape): in data
  ``%`` → ``%25``, CR → ``%0D``, LF → ``%0A``; in property values also ``:`` → ``%3A``
  and ``,`` → ``%2C``, which would otherwise end the value. ``file`` is relative to
  ``GITHUB_WORKSPACE`` (the repository root), or GitHub does not link it.
- The step summary is Markdown appended to the file named by ``GITHUB_STEP_SUMMARY``.
- Outputs are appended to ``GITHUB_OUTPUT`` in the heredoc form ``name<<DELIM`` … ``DELIM``
  with a random delimiter, so no value can inject another output.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dbx_promote.ci.base import CISystem, IssueKind, PathLike


def escape_data(value: object) -> str:
    """Escape a command's message. ``%`` first, or the ``%`` of ``%0A`` would be escaped."""
    return str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: object) -> str:
    """Escape a property value (``key=value``, separated by ``,``, ended by ``::``)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, properties: Mapping[str, object] | None = None, message: str = "") -> str:
    """One workflow command line, e.g. ``::warning file=a.py,line=3::text``."""
    props = ",".join(
        f"{key}={escape_property(value)}"
        for key, value in (properties or {}).items()
        if value is not None
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def output_block(name: str, value: str) -> str:
    """``name<<DELIM\\nvalue\\nDELIM\\n``: the multiline-safe form of one output."""
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    # A uuid4 in the value is practically impossible; refusing it keeps the file sound.
    if delimiter in name or delimiter in value:
        raise ValueError(f"output {name!r} contains its delimiter")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


class GitHubActions(CISystem):
    """The GitHub Actions runner (a hosted or self-hosted runner, or a container job)."""

    name = "github-actions"
    marker = ("GITHUB_ACTIONS", "true")

    def annotate(
        self, kind: IssueKind, message: str, file: PathLike | None, line: int | None
    ) -> None:
        props: dict[str, object] = {"title": "dbx-promote"}
        if file:
            props["file"] = self.repo_relative(file, "GITHUB_WORKSPACE")
            props["line"] = line
        self.err(command(kind, props, message))

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        # Groups fold standard output: they go where the plan is printed.
        self.out(command("group", None, " ".join(str(title).splitlines())))
        try:
            yield
        finally:
            self.out(command("endgroup"))

    def _append(self, var: str, text: str) -> bool:
        target = self.env.get(var)
        if not target:
            return False
        with Path(target).open("a", encoding="utf-8") as f:
            f.write(text)
        return True

    def summary(self, markdown: str, *, name: str) -> None:
        self._append("GITHUB_STEP_SUMMARY", markdown.rstrip("\n") + "\n\n")

    def outputs(self, values: Mapping[str, str]) -> None:
        self._append("GITHUB_OUTPUT", "".join(output_block(k, v) for k, v in values.items()))

    def run_context(self) -> dict[str, str] | None:
        env = self.env
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        repo, run_id = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", "")
        ctx = {
            "ci": self.name,
            "repository": repo,
            "workflow": env.get("GITHUB_WORKFLOW", ""),
            "job": env.get("GITHUB_JOB", ""),
            "run_id": run_id,
            "run_attempt": env.get("GITHUB_RUN_ATTEMPT", ""),
            "actor": env.get("GITHUB_ACTOR", ""),
            "ref": env.get("GITHUB_REF", ""),
            "sha": env.get("GITHUB_SHA", ""),
        }
        if repo and run_id:
            ctx["run_url"] = f"{server}/{repo}/actions/runs/{run_id}"
        return {k: v for k, v in ctx.items() if v}
