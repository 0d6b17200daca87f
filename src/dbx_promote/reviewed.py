"""Reviewed plans: what the approver saw before the gate is exactly what lands after it.

`deploy --dry-run --plan-out plan.json` saves the plan; `deploy --plan plan.json` applies
only if the live plan has the same artifact digest and the same changes. Timestamps and
object ids are not compared: they change without changing what the deploy will do.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dbx_promote.bounds import BadDocument, load_json
from dbx_promote.errors import PlanFileError, StalePlan
from dbx_promote.localpaths import shown
from dbx_promote.plan import Plan
from dbx_promote.record import utc_now

PLAN_SCHEMA = 1


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path`` atomically; returns the path."""
    path = Path(path)
    doc = {
        "schema_version": PLAN_SCHEMA,
        "kind": "dbx-promote-plan",
        "created_at": utc_now(),
        "signature": plan.signature(),
        "plan": plan.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".plan-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        # A name the file system refuses, a full disk: no half-written plan is left beside it.
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def confirmed_plan(plan: Plan) -> dict[str, Any]:
    """The reviewed-plan document of a plan a person confirmed on a terminal.

    Applying with it (`DeployOptions.reviewed_plan`) lands exactly what was confirmed: if
    the folder moved in between, the deploy stops with `StalePlan`.
    """
    return {"signature": plan.signature(), "plan": {"env": plan.env}}


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read a saved plan; `PlanFileError` (exit 2) when it is not one."""
    path = Path(path)
    try:
        doc = load_json(path.read_bytes())
    except FileNotFoundError:
        raise PlanFileError(f"plan file {shown(str(path))} does not exist") from None
    except OSError as exc:
        raise PlanFileError(
            f"plan file {shown(str(path))} cannot be read: {exc.strerror}"
        ) from None
    except BadDocument as exc:
        raise PlanFileError(f"{path} is not a dbx-promote plan ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "dbx-promote-plan":
        raise PlanFileError(f"{path} is not a dbx-promote plan")
    if doc.get("schema_version") != PLAN_SCHEMA or not isinstance(doc.get("signature"), dict):
        raise PlanFileError(f"{path} has an unsupported plan format")
    sig = doc["signature"]
    changes = sig.get("changes")
    if (
        not isinstance(sig.get("digest"), str)
        or not isinstance(sig.get("root"), str)
        or not isinstance(changes, list)
        or not all(isinstance(c, list) and len(c) == 4 for c in changes)
        or not isinstance(sig.get("rmdirs", []), list)
    ):
        raise PlanFileError(f"{path} is damaged: its signature is not a dbx-promote plan's")
    return doc


def check_reviewed_plan(doc: dict[str, Any], live: Plan) -> None:
    """Raise `StalePlan` (exit 1) with the difference unless ``live`` matches ``doc``."""
    saved = doc["signature"]
    now = live.signature()
    planned_env = doc.get("plan", {}).get("env")
    if planned_env and planned_env != live.env:
        raise PlanFileError(f"this plan was made for environment '{planned_env}', not '{live.env}'")
    if saved == now:
        return
    problems: list[str] = []
    if saved.get("digest") != now["digest"]:
        problems.append(f"artifact {saved.get('digest')} was reviewed, {now['digest']} is deployed")
    if saved.get("root") != now["root"]:
        problems.append(f"folder {saved.get('root')} was reviewed, not {now['root']}")
    old = {tuple(c) for c in saved.get("changes", [])}
    new = {tuple(c) for c in now["changes"]}
    for c in sorted(new - old):
        problems.append(f"new: {c[0]} {c[1]}" + (" (edited by hand)" if c[2] else ""))
    for c in sorted(old - new):
        problems.append(f"gone: {c[0]} {c[1]}")
    if saved.get("rmdirs") != now["rmdirs"]:
        problems.append("folders to remove differ")
    if saved.get("rows") != now.get("rows"):
        problems.append("other rows of the plan (e.g. permissions) differ")
    raise StalePlan(
        "the folder changed since the plan was reviewed, nothing was deployed: "
        + "; ".join(problems[:10])
        + ". Review a new plan."
    )
