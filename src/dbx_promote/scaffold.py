"""`dbx-promote init`: config, CI pipeline(s) and a first smoke test for a notebooks repository.

`init_project` finds the notebooks, renders the files from the templates in
``dbx_promote/templates/`` and writes them, all or nothing: if any target exists and
``force`` is not set, it raises `BadInput` naming every such file before writing any.
Nothing here prints; the CLI shows what was written and the next steps.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from dbx_promote import __version__
from dbx_promote.errors import BadInput
from dbx_promote.notebooks import SKIPPED_DIRS, notebook_header_language

CONFIG_FILE = "dbx-promote.yml"
PIPELINE_FILES = {"azure": "azure-pipelines.yml", "github": ".github/workflows/dbx-promote.yml"}
CI_CHOICES = ("azure", "github", "both")
SMOKE_TEST = "tests/smoke_test.py"

# Folders that hold someone else's code, never a team's notebooks.
_FOREIGN_DIRS = frozenset({"node_modules", "site-packages", "dist-packages"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class InitOptions:
    """What `init` should write.

    :param root: the repository root; every file is written below it.
    :param ci: ``azure``, ``github`` or ``both``; None picks from the repository (see
        `default_ci`).
    :param source: the notebooks folder; None finds it.
    :param project: the project name; None takes the root folder's name.
    :param force: overwrite files that exist.
    """

    root: Path
    ci: str | None = None
    source: Path | None = None
    project: str | None = None
    force: bool = False


@dataclass(frozen=True)
class InitResult:
    """What `init` wrote (paths relative to the root, POSIX) and what to do next."""

    project: str
    source: str
    notebooks: int
    ci: str
    written: tuple[str, ...]
    overwritten: tuple[str, ...]
    next_steps: tuple[str, ...]


def default_ci(root: Path) -> str:
    """``github`` for a repository with a ``.github`` folder, ``azure`` for one hosted in
    Azure Repos (its origin URL), otherwise ``both``."""
    if (root / ".github").is_dir():
        return "github"
    git_config = root / ".git" / "config"
    try:
        text = git_config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if "dev.azure.com" in text or "visualstudio.com" in text:
        return "azure"
    return "both"


def _is_foreign(folder: Path) -> bool:
    """Hidden folders, virtual environments and installed packages are not the team's."""
    name = folder.name
    return (
        name.startswith(".")
        or name in SKIPPED_DIRS
        or name in _FOREIGN_DIRS
        or (folder / "pyvenv.cfg").exists()
        or (folder / "conda-meta").is_dir()
    )


def find_notebooks(root: Path) -> Iterator[Path]:
    """Every Databricks source notebook and ``.ipynb`` below ``root``, in sorted order."""
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if not _is_foreign(entry):
                yield from find_notebooks(entry)
        elif entry.suffix == ".ipynb" and not entry.name.startswith("."):
            yield entry
        elif entry.is_file() and not entry.name.startswith("."):
            try:
                with entry.open("rb") as f:
                    first = f.readline(200)
            except OSError:
                continue
            if notebook_header_language(entry.name, first):
                yield entry


def _relative(root: Path, path: Path) -> str:
    rel = PurePosixPath(*path.relative_to(root).parts)
    return str(rel) if rel.parts else "."


def _source_folder(root: Path, source: Path | None) -> tuple[Path, list[Path]]:
    """The notebooks folder and the notebooks in it: ``source``, or the nearest folder
    that holds every notebook found under ``root``."""
    if source is not None:
        folder = (root / source).resolve()
        if not folder.is_dir():
            raise BadInput(f"--source {source}: no such folder")
        if folder != root and root not in folder.parents:
            raise BadInput(f"--source {source} is outside the repository {root}")
        return folder, list(find_notebooks(folder))
    found = list(find_notebooks(root))
    if not found:
        raise BadInput(
            f"no Databricks notebooks found under {root} (source files whose first line is "
            "'# Databricks notebook source', or .ipynb); pass --source DIR"
        )
    return Path(os.path.commonpath([p.parent for p in found])), found


def _project_name(root: Path, project: str | None) -> str:
    if project is not None:
        if not _NAME.match(project):
            raise BadInput(
                f"--project '{project}' must start with a letter or digit and hold only "
                "letters, digits, '.', '_' or '-'"
            )
        return project
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-._")
    return name or "notebooks"


def _include_globs(root: Path, notebooks: list[Path]) -> list[str]:
    """When the notebooks sit at the repository root, package only their top-level folders
    and files (and the smoke test), not the whole repository."""
    globs = set()
    for nb in notebooks:
        first = nb.relative_to(root).parts[0]
        globs.add(f"{first}/**" if (root / first).is_dir() else first)
    if "tests/**" not in globs:
        globs.add(SMOKE_TEST)
    return sorted(globs)


def _yaml_str(value: str) -> str:
    # A JSON string is a YAML string: quoting only what needs it keeps the file readable.
    return value if _PLAIN.match(value) else json.dumps(value)


def _template(name: str) -> str:
    return resources.files("dbx_promote").joinpath(f"templates/{name}").read_text(encoding="utf-8")


def render_config(project: str, source: str, include: list[str] | None = None) -> str:
    """The text of a new ``dbx-promote.yml`` (validated by `load_config` like any other)."""
    build = ""
    if include:
        globs = ", ".join(json.dumps(g) for g in include)
        build = f"build:\n  include: [{globs}]\n"
    return (
        _template("dbx-promote.yml.tmpl")
        .replace("@PROJECT@", project)
        .replace("@SOURCE@", _yaml_str(source))
        .replace("@BUILD@\n", build)
    )


def render_pipeline(ci: str) -> str:
    """The pipeline file for ``azure`` or ``github``, pinned to this dbx-promote version."""
    name = {"azure": "azure-pipelines.yml.tmpl", "github": "github-workflow.yml.tmpl"}[ci]
    return _template(name).replace("@VERSION@", __version__)


def _next_steps(ci: str, smoke: str) -> tuple[str, ...]:
    setup = {
        "github": "create the GitHub environments test, prod-plan and prod (required reviewers "
        "on prod), set the variables DATABRICKS_CLIENT_ID, DBX_PROMOTE_TEST_HOST and "
        "DBX_PROMOTE_PROD_HOST, and federate the service principal with GitHub OIDC "
        "(docs/github-actions.md)",
        "azure": "create the service connections sc-dbx-test and sc-dbx-prod and the variable "
        "groups dbx-test and dbx-prod, then run `dbx-promote ado ensure-environments` "
        "(docs/azure-devops.md)",
    }
    chosen = ["github", "azure"] if ci == "both" else [ci]
    return (
        "point the roots in dbx-promote.yml at your folders, then try it: "
        "`dbx-promote deploy --env dev --dry-run`",
        "; and ".join(setup[c] for c in chosen),
        f"commit dbx-promote.yml, the pipeline and {smoke}, and open a pull "
        "request: its build checks the notebooks; merging deploys to test",
    )


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init_project(options: InitOptions) -> InitResult:
    """Write ``dbx-promote.yml``, the pipeline file(s) and a smoke test notebook.

    :raises BadInput: no notebooks found, a bad ``--source``/``--project``/``--ci``, or a
        file that exists (without ``force``); nothing is written then.
    """
    root = options.root.resolve()
    ci = options.ci or default_ci(root)
    if ci not in CI_CHOICES:
        raise BadInput(f"--ci must be one of {', '.join(CI_CHOICES)}, not '{ci}'")
    folder, notebooks = _source_folder(root, options.source)
    project = _project_name(root, options.project)
    source = _relative(root, folder)
    include = _include_globs(root, notebooks) if folder == root else None
    smoke = SMOKE_TEST if source == "." else f"{source}/{SMOKE_TEST}"
    files = {CONFIG_FILE: render_config(project, source, include)}
    for system in ["azure", "github"] if ci == "both" else [ci]:
        files[PIPELINE_FILES[system]] = render_pipeline(system)
    files[smoke] = _template("smoke_test.py.tmpl")
    existing = [rel for rel in files if (root / rel).exists() or (root / rel).is_symlink()]
    if existing and not options.force:
        raise BadInput(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "nothing was written (pass --force to overwrite)"
        )
    for rel, text in files.items():
        _write_atomically(root / rel, text)
    return InitResult(
        project=project,
        source=source,
        notebooks=len(notebooks),
        ci=ci,
        written=tuple(files),
        overwritten=tuple(existing),
        next_steps=_next_steps(ci, smoke),
    )
