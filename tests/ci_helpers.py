"""Reading CI output the way the GitHub Actions runner reads it."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml


def runner_unescape_data(value: str) -> str:
    """The runner's ActionCommand.UnescapeData (percent last)."""
    return value.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def runner_unescape_property(value: str) -> str:
    """The runner's ActionCommand.UnescapeProperty."""
    for token, repl in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ",")):
        value = value.replace(token, repl)
    return value.replace("%25", "%")


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Split ``::name k=v,k=v::message`` the way the runner does."""
    m = re.fullmatch(r"::(?P<name>[^ :]+)(?: (?P<props>.*?))?::(?P<msg>.*)", line)
    assert m, line
    props = {}
    for pair in (m["props"] or "").split(","):
        if pair:
            key, _, value = pair.partition("=")
            props[key] = runner_unescape_property(value)
    return m["name"], props, runner_unescape_data(m["msg"])


def read_outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT as the runner does: ``k=v`` lines and ``k<<DELIM`` blocks."""
    lines = path.read_text().split("\n")
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[key] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif line:
            key, _, value = line.partition("=")
            out[key] = value
            i += 1
        else:
            i += 1
    return out


# --- workflow files against the GitHub workflow schema ---------------------------------------

SCHEMAS = Path(__file__).parent / "schemas"
# shared/ lies beside the repository (in CI) or beside the folder of worktrees.
SHARED_SCHEMAS = next(
    (
        p / "shared" / "schemas"
        for p in Path(__file__).resolve().parents[1:4]
        if (p / "shared" / "schemas").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "schemas",
)


class Yaml12Loader(yaml.SafeLoader):
    """PyYAML with YAML 1.2 booleans: only true/false (so the key `on:` stays a string)."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_workflow(text: str) -> Any:
    return yaml.load(text, Loader=Yaml12Loader)  # a SafeLoader subclass: safe


@lru_cache(maxsize=1)
def github_validator() -> Any:
    from jsonschema import Draft7Validator

    schema = json.loads((SCHEMAS / "github-workflow.json").read_text())
    return Draft7Validator(schema)


def github_schema_errors(text: str) -> list[str]:
    """Every schema error of a workflow file, as ``path: message`` (empty when valid)."""
    doc = load_workflow(text)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in sorted(github_validator().iter_errors(doc), key=lambda e: list(e.path))
    ]


@lru_cache(maxsize=1)
def _azure_validator() -> tuple[Any, Any]:
    spec = importlib.util.spec_from_file_location(
        "validate_pipeline", SHARED_SCHEMAS / "validate_pipeline.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    schema = json.loads((SHARED_SCHEMAS / "azure-pipelines.schema.json").read_text())
    return module, module.make_validator(schema, "ado")


def azure_schema_errors(text: str) -> list[str]:
    """Schema errors of an Azure Pipelines file (the shared validator, compiled once)."""
    if not (SHARED_SCHEMAS / "validate_pipeline.py").is_file():
        pytest.skip(f"shared schemas not found at {SHARED_SCHEMAS}")
    module, validator = _azure_validator()
    errors: list[str] = module.report(validator, module.load_yaml(text, "ado"))
    return errors
