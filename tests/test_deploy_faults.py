"""Failure is designed: a fault at any write leaves the folder on v1 or on v2, never between.

For a v1 -> v2 deploy we count its write requests, then for every index in turn inject a
fault into exactly that write (a 500, a 429 storm longer than the retry budget, a dropped
connection, a permanent 400, and a write that lands but whose answer is lost), and check
when the deploy returns or raises that the managed objects are exactly v1 or exactly v2 —
and that the next clean deploy converges to v2. Three release pairs: an update inside
existing folders, a release that adds a new folder (one directory import among the
writes), and a first deploy (nothing -> v1, new folders in bulk).
"""

from __future__ import annotations

import pytest

from dbx_promote.emulator import Fault
from dbx_promote.errors import DbxPromoteError

from deploy_helpers import ROOT, V1, V2, build, deploy, managed_state

ATTEMPTS = 4  # the engine's retry budget in these tests (deploy_helpers.deployer)

FAULTS = {
    "500": dict(status=500, error_code="INTERNAL_ERROR"),
    "429-storm": dict(
        status=429, error_code="REQUEST_LIMIT_EXCEEDED", retry_after=0, times=ATTEMPTS + 2
    ),
    "dropped": dict(drop=True),
    "400-refused": dict(status=400, error_code="INVALID_STATE"),
    "500-after-landing": dict(status=500, error_code="INTERNAL_ERROR", after=True),
    "dropped-after-landing": dict(drop=True, after=True),
}
V2_NEW_FOLDER = {
    **V2,
    **{f"fresh/sub/n{i}.py": f"# Databricks notebook source\nprint({i})\n" for i in range(3)},
    "fresh/top.sql": "-- Databricks notebook source\nSELECT 2\n",
}
PAIRS = {"update": (V1, V2), "new-folder": (V1, V2_NEW_FOLDER), "first": (None, V1)}
SWEEPS = [
    (pair, kind)
    for pair in sorted(PAIRS)
    for kind in sorted(FAULTS)
    if pair != "update" or not kind.endswith("-after-landing")
]


def releases(emulator, fake_clock, tmp_path, pair):
    old, new = PAIRS[pair]
    v1 = build(tmp_path, old, "1.0.0") if old is not None else None
    v2 = build(tmp_path, new, "2.0.0")
    if v1 is not None:
        deploy(emulator, fake_clock, v1)
    v1_state = managed_state(emulator)
    start = len(emulator.request_log())
    deploy(emulator, fake_clock, v2)
    v2_state = managed_state(emulator)
    writes = [
        r for r in emulator.request_log()[start:] if r["endpoint"] in ("import", "mkdirs", "delete")
    ]
    if pair != "update":  # the sweep reaches the directory imports
        assert any(r["path"].endswith(("/fresh", "/etl")) for r in writes)
    return v1, v2, v1_state, v2_state, len(writes)


@pytest.mark.slow
@pytest.mark.parametrize(("pair", "kind"), SWEEPS)
def test_a_fault_at_any_write_leaves_v1_or_v2_and_the_next_deploy_converges(
    emulator, fake_clock, tmp_path, pair, kind
):
    v1, v2, v1_state, v2_state, n_writes = releases(emulator, fake_clock, tmp_path, pair)
    assert n_writes >= 7
    outcomes = {}
    for index in range(1, n_writes + 1):
        emulator.reset()
        if v1 is not None:
            deploy(emulator, fake_clock, v1)
        emulator.add_fault(Fault(writes_only=True, nth=index, **FAULTS[kind]))  # type: ignore[arg-type]
        try:
            deploy(emulator, fake_clock, v2)
            outcome = "v2"
        except DbxPromoteError as exc:
            outcome = f"failed: {type(exc).__name__}"
        emulator.clear_faults()

        state = managed_state(emulator)
        assert state in (v1_state, v2_state), f"{kind} at write {index}: mixed folder"
        lock_left = f"{ROOT}/.dbx-promote/lock.json" in emulator.tree(ROOT)
        if kind == "400-refused" and index == n_writes:
            # A permanent refusal of the lock release itself: the deploy is done and
            # verified, the lock stays and the engine warns. Remove it as a user would.
            assert lock_left and outcome == "v2"
            _remove_lock(emulator)
        else:
            assert not lock_left, f"{kind} at write {index}: lock left behind"
        outcomes[index] = (outcome, "v1" if state == v1_state else "v2")

        deploy(emulator, fake_clock, v2)
        assert managed_state(emulator) == v2_state, f"{kind} at write {index}: no convergence"

    # Every failure that was reported ended on v1 (restored), every success on v2.
    for index, (outcome, state) in outcomes.items():
        assert (outcome == "v2") == (state == "v2"), (kind, index, outcome, state)
    if kind in ("400-refused", "429-storm"):
        assert any(o.startswith("failed") for o, _ in outcomes.values())


def _remove_lock(emulator) -> None:
    import urllib.request

    req = urllib.request.Request(
        f"{emulator.url}/api/2.0/workspace/delete",
        data=b'{"path": "%s/.dbx-promote/lock.json"}' % ROOT.encode(),
        headers={"Authorization": "Bearer x", "Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req).read()


@pytest.mark.slow
def test_a_failure_at_any_write_puts_a_hand_edit_back_as_it_was(emulator, fake_clock, tmp_path):
    """Before the failed deploy the folder held v1 with a hand edit; after it, exactly that."""
    v1, v2, _, v2_state, n_writes = releases(emulator, fake_clock, tmp_path, "update")
    assert v1 is not None
    for index in range(1, n_writes + 4):
        emulator.reset()
        deploy(emulator, fake_clock, v1)
        emulator.hand_edit(f"{ROOT}/etl/ingest", b"# Databricks notebook source\nprint('hotfix')\n")
        before = managed_state(emulator)
        emulator.add_fault(
            Fault(writes_only=True, nth=index, status=400, error_code="INVALID_STATE")
        )
        try:
            deploy(emulator, fake_clock, v2)
        except DbxPromoteError:
            pass
        emulator.clear_faults()
        state = managed_state(emulator)
        assert state in (before, v2_state), f"write {index}: neither the edited v1 nor v2"
        if state == v2_state:
            backups = [p for p in emulator.tree(ROOT) if "/backups/" in p and p.endswith("ingest")]
            assert backups, f"write {index}: the hand edit was overwritten without a backup"
