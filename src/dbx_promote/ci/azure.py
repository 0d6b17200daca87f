"""Azure Pipelines (``TF_BUILD=True``): ``##vso`` logging commands on standard output."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dbx_promote.azure import logging_commands as vso
from dbx_promote.ci.base import CISystem, IssueKind, PathLike


class AzurePipelines(CISystem):
    """The Azure Pipelines agent reads logging commands from the step's standard output."""

    name = "azure-pipelines"
    marker = ("TF_BUILD", "true")
    stdout_free = False

    def annotate(
        self, kind: IssueKind, message: str, file: PathLike | None, line: int | None
    ) -> None:
        source = self.repo_relative(file, "BUILD_SOURCESDIRECTORY") if file else None
        self.out(vso.log_issue(kind, message, source_path=source, line=line))

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self.out(vso.group_start(title))
        try:
            yield
        finally:
            self.out(vso.group_end())

    def summary(self, markdown: str, *, name: str) -> None:
        # The agent uploads the file when the step ends: it must outlive this process.
        directory = self.env.get("AGENT_TEMPDIRECTORY") or None
        fd, path = tempfile.mkstemp(prefix=f"dbx-promote-{name}-", suffix=".md", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(markdown)
        self.out(vso.upload_summary(path))

    def tag(self, tag: str) -> None:
        self.out(vso.add_build_tag(tag))

    def outputs(self, values: Mapping[str, str]) -> None:
        # Output variables are dbxPromoteVersion, dbxPromoteDigest: names in a pipeline's
        # variable namespace, shared with every other task of the job.
        for key, value in values.items():
            name = "dbxPromote" + key[:1].upper() + key[1:]
            self.out(vso.set_variable(name, value, is_output=True))

    def run_context(self) -> dict[str, str] | None:
        env = self.env
        collection = env.get("SYSTEM_COLLECTIONURI", "").rstrip("/")
        project = env.get("SYSTEM_TEAMPROJECT", "")
        build_id = env.get("BUILD_BUILDID", "")
        ctx = {
            "ci": self.name,
            "build_number": env.get("BUILD_BUILDNUMBER", ""),
            "build_id": build_id,
            "source_branch": env.get("BUILD_SOURCEBRANCH", ""),
            "source_version": env.get("BUILD_SOURCEVERSION", ""),
            "requested_for": env.get("BUILD_REQUESTEDFOR", ""),
            "stage": env.get("SYSTEM_STAGENAME", ""),
            "pipeline": env.get("BUILD_DEFINITIONNAME", ""),
        }
        if collection and project and build_id:
            ctx["run_url"] = f"{collection}/{project}/_build/results?buildId={build_id}"
        return {k: v for k, v in ctx.items() if v}
