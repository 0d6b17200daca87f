"""Round trips: counting them from the emulator's log, and the ones a deploy no longer makes
(what it already knows is looked up, not listed again; SCIM Me beside the first reads)."""

from __future__ import annotations

import pytest

from dbx_promote import operations
from dbx_promote.config import load_config
from dbx_promote.deploy import Deployer, DeployStep, target_from_artifact
from dbx_promote.emulator.control import sequential_round_trips
from dbx_promote.known import RECHECK_LIMIT, patched, touched_paths, unchanged_since
from dbx_promote.layout import Layout
from dbx_promote.plan import DesiredObject, make_plan
from dbx_promote.remote import RemoteObject
from dbx_promote.workspace import Workspace

from conftest import make_client
from deploy_helpers import ROOT, V1, V2, build, deploy, deployer


def spans(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"start": a, "ts": b} for a, b in pairs]


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ([], 0),
        (spans((0, 1)), 1),
        (spans((0, 1), (1, 2), (2, 3)), 3),
        (spans((0, 1), (0, 1), (0.5, 1.5)), 1),
        (spans((0, 1), (1.5, 2), (1, 3), (3, 4)), 3),
        (spans(*[(i * 0.3, i * 0.3 + 1) for i in range(10)]), 3),  # a paced batch
    ],
)
def test_longest_chain_of_requests_each_sent_after_the_last_answer(log, expected):
    assert sequential_round_trips(log) == expected


def test_two_calls_one_after_the_other_are_two_round_trips(workspace_client, emulator):
    workspace_client.workspace.get_status("/Shared")
    workspace_client.workspace.get_status("/Users")
    log = emulator.request_log()
    assert all(e["start"] <= e["ts"] for e in log)
    assert sequential_round_trips(log) == 2


# --- what a deploy already knows (known.py) -------------------------------------------

LAYOUT = Layout("/Shared/r")


def nb_at(rel: str, modified: int = 1, object_id: int = 7) -> RemoteObject:
    return RemoteObject(f"/Shared/r/{rel}", "NOTEBOOK", "PYTHON", object_id, modified)


@pytest.mark.parametrize(
    ("now", "same"),
    [
        ({"a": nb_at("a")}, True),
        ({"a": nb_at("a", modified=2)}, False),  # edited by hand meanwhile
        ({"a": None}, False),  # deleted meanwhile
        ({"new": None}, True),  # still absent
        ({"new": nb_at("new")}, False),  # created meanwhile
        ({"d": None}, False),  # a folder where the listing had one
    ],
)
def test_a_path_is_unchanged_only_when_it_is_exactly_as_listed(now, same):
    listing = [nb_at("a"), RemoteObject("/Shared/r/d", "DIRECTORY")]
    assert unchanged_since(listing, LAYOUT, now) is same


def test_patched_listing_takes_the_paths_as_they_are_now():
    listing = [nb_at("a"), nb_at("b")]
    out = patched(listing, LAYOUT, {"a": nb_at("a", modified=5), "b": None, "c": nb_at("c")})
    assert sorted((o.path, o.modified_at) for o in out) == [
        ("/Shared/r/a", 5),
        ("/Shared/r/c", 1),
    ]


def test_past_the_limit_the_paths_are_not_looked_up_one_by_one():
    few = [DesiredObject(f"n{i}", "notebook", "PYTHON", "SOURCE", "0" * 64) for i in range(3)]
    many = [
        DesiredObject(f"n{i}", "notebook", "PYTHON", "SOURCE", "0" * 64)
        for i in range(RECHECK_LIMIT + 1)
    ]
    plan = make_plan(few, [], None, env="t", root="/Shared/r", version="1", digest="d")
    assert touched_paths(plan) == ["n0", "n1", "n2"]
    plan = make_plan(many, [], None, env="t", root="/Shared/r", version="1", digest="d")
    assert touched_paths(plan) is None


# --- the requests of a redeploy -------------------------------------------------------


def test_one_changed_notebook_lists_once_and_looks_up_only_that_notebook(
    emulator, fake_clock, tmp_path
):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    changed = dict(V1, **{"etl/ingest.py": V2["etl/ingest.py"]})
    d = deployer(emulator, fake_clock)  # SCIM Me is done here, not counted below
    emulator.controls.reset()

    d.deploy(target_from_artifact(build(tmp_path, changed, "1.0.1"), d.env, d.user))

    by_endpoint = emulator.counters()["by_endpoint"]
    assert by_endpoint["list"] == 4  # root, etl, reports, lib: once
    assert by_endpoint["get-status"] == 2  # the notebook after the lock, then to verify
    exports = [
        r["path"].rsplit("/", 1)[1] for r in emulator.request_log() if r["endpoint"] == "export"
    ]
    # The record before and after the lock, the history, the lock read back to release it.
    assert sorted(exports) == ["deployment.json", "deployment.json", "history.json", "lock.json"]
    log = emulator.request_log()
    record_written = next(
        r["ts"] for r in log if r["endpoint"] == "import" and r["path"].endswith("deployment.json")
    )
    read_back = next(
        r for r in log if r["endpoint"] == "export" and r["path"].endswith("lock.json")
    )
    # Beside the history write, once the commit point is written, never before it.
    assert read_back["start"] >= record_written


def test_a_hand_edit_made_before_the_lock_is_still_backed_up(emulator, fake_clock, tmp_path):
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    changed = dict(V1, **{"etl/ingest.py": V2["etl/ingest.py"]})

    class EditOnce(DeployStep):
        """Edits the notebook by hand right after the first plan was made."""

        done = False

        def extend_plan(self, run, plan):
            if not self.done:
                self.done = True
                emulator.hand_edit(f"{ROOT}/etl/ingest")
            return plan

    d = deployer(emulator, fake_clock)
    d = Deployer(d.ws, d.env, d.root, d.user, steps=[EditOnce()])
    result = d.deploy(target_from_artifact(build(tmp_path, changed, "1.0.1"), d.env, d.user))

    assert [c.path for c in result.plan.drift] == ["etl/ingest"]
    assert any(p.endswith("/etl/ingest") for p in result.backups)


def test_scim_me_runs_beside_the_first_reads_unless_the_root_needs_the_user(
    tmp_path, emulator, fake_clock
):
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(
        "project: p\nsource: src\nenvironments:\n"
        "  test: {root: /Shared/p/test}\n  dev: {root: '/Users/{user}/p'}\n"
    )
    (tmp_path / "src").mkdir()
    config = load_config(cfg)

    def connect(env):
        return Workspace(make_client(emulator.url, fake_clock))

    test = operations.open_environment(config, "test", connect=connect)
    dev = operations.open_environment(config, "dev", connect=connect)
    assert not isinstance(test._user, str) and test.user == "emulator@example.com"
    assert dev._user == "emulator@example.com"
    assert dev.root == "/Users/emulator@example.com/p"
