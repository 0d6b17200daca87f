"""Split one deploy's requests (the emulator's log) into phases, with each phase's round trips.

The phases follow the engine's steps and are told apart by what the requests touch:

- plan: everything before the lock is taken (SCIM Me, the record, the listing, the state
  folder);
- lock: creating `.dbx-promote/lock.json`;
- re-plan: reads after the lock and before the first write;
- apply: backups, folders, notebook imports (single or directory), deletes, the stored
  release and `_environment`, up to the last of them;
- verify: reads after the last apply write and before the record;
- commit: the record, the history and pruning old releases;
- unlock: reading the lock back and deleting it.

Round trips are `sequential_round_trips` of each phase's requests: the longest chain of
requests each sent after the previous one was answered.
"""

from __future__ import annotations

from typing import Any

from dbx_promote.emulator.control import sequential_round_trips

PHASES = ("plan", "lock", "re-plan", "apply", "verify", "commit", "unlock")
WRITES = frozenset({"import", "mkdirs", "delete"})


def _is(entry: dict[str, Any], suffix: str) -> bool:
    return str(entry.get("path") or "").endswith(suffix)


def _bookkeeping(entry: dict[str, Any]) -> bool:
    return any(
        _is(entry, s)
        for s in (
            ".dbx-promote/lock.json",
            ".dbx-promote/deployment.json",
            ".dbx-promote/history.json",
        )
    )


def split(log: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The log's requests by phase (a phase with no request is absent)."""
    log = sorted(log, key=lambda e: e["start"])
    lock_at = next(
        (e["start"] for e in log if e["endpoint"] == "import" and _is(e, "/lock.json")), None
    )
    apply_writes = [
        e
        for e in log
        if e["endpoint"] in WRITES
        and not _bookkeeping(e)
        and not (e["endpoint"] == "delete" and "/.dbx-promote/releases/" in str(e["path"]))
        and (lock_at is None or e["start"] > lock_at)
        and not (e["endpoint"] == "mkdirs" and (lock_at is None or e["start"] < lock_at))
    ]
    first = min((e["start"] for e in apply_writes), default=None)
    last = max((e["ts"] for e in apply_writes), default=None)
    record_at = next(
        (e["start"] for e in log if e["endpoint"] == "import" and _is(e, "/deployment.json")),
        None,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for e in log:
        out.setdefault(_phase(e, lock_at, first, last, record_at, apply_writes), []).append(e)
    return out


def _phase(
    e: dict[str, Any],
    lock_at: float | None,
    first: float | None,
    last: float | None,
    record_at: float | None,
    apply_writes: list[dict[str, Any]],
) -> str:
    if lock_at is None or e["start"] < lock_at:
        return "plan"
    if _is(e, "/lock.json"):
        return (
            "lock"
            if e["endpoint"] == "import" or record_at is None or e["start"] < record_at
            else "unlock"
        )
    if e in apply_writes:
        return "apply"
    if record_at is not None and e["start"] >= record_at:
        return "commit"
    if first is None or e["start"] < first:
        return "re-plan"
    if last is not None and e["start"] < last:
        return "apply"
    return "verify"


def phases(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per phase, in order: its name, requests and sequential round trips."""
    parts = split(log)
    return [
        {"phase": p, "requests": len(parts[p]), "round_trips": sequential_round_trips(parts[p])}
        for p in PHASES
        if p in parts
    ]
