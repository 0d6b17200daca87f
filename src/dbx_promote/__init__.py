"""dbx-promote: build Databricks notebooks once, promote the same bytes many times.

The command line is a thin layer over this Python API::

    from dbx_promote import load_config, open_artifact, operations, DeployOptions

    config = load_config("dbx-promote.yml")
    artifact = open_artifact("dist/sales-analytics-1.4.3.zip")
    result = operations.deploy(config, "test", artifact, DeployOptions(dry_run=True))
    print(result.to_dict()["changes"])

Names are imported on first use: `dbx-promote build` should not pay for importing the
Databricks SDK, which takes about a second.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Artifact": "dbx_promote.artifact",
    "BadInput": "dbx_promote.errors",
    "BuildOptions": "dbx_promote.artifact",
    "Config": "dbx_promote.config",
    "DbxPromoteError": "dbx_promote.errors",
    "DeployOptions": "dbx_promote.deploy",
    "DeployResult": "dbx_promote.deploy",
    "Deployer": "dbx_promote.deploy",
    "Environment": "dbx_promote.config",
    "Manifest": "dbx_promote.artifact",
    "OperationFailed": "dbx_promote.errors",
    "Plan": "dbx_promote.plan",
    "build_artifact": "dbx_promote.artifact",
    "load_config": "dbx_promote.config",
    "make_plan": "dbx_promote.plan",
    "open_artifact": "dbx_promote.artifact",
}

__all__ = sorted([*_EXPORTS, "__version__", "operations"])


def __getattr__(name: str) -> Any:
    if name == "operations":
        return importlib.import_module("dbx_promote.operations")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dbx_promote' has no attribute {name!r}")
