"""The planner is a pure function: (desired, listing, record) -> plan. Table-driven."""

from __future__ import annotations

import pytest

from dbx_promote.plan import DesiredObject, environment_notebook, make_plan
from dbx_promote.record import ManagedObject, Record
from dbx_promote.remote import RemoteObject

ROOT = "/Shared/app"


def nb(path: str, sha: str = "a", lang: str = "PYTHON") -> DesiredObject:
    return DesiredObject(path, "notebook", lang, "SOURCE", sha)


def remote(
    path: str, t: str = "NOTEBOOK", lang: str | None = "PYTHON", mod: int = 1
) -> RemoteObject:
    return RemoteObject(f"{ROOT}/{path}", t, lang, object_id=hash(path) % 1000, modified_at=mod)


def folder(path: str) -> RemoteObject:
    return RemoteObject(f"{ROOT}/{path}", "DIRECTORY")


def record(objects: dict[str, tuple[str, int]], dirs: tuple[str, ...] = ()) -> Record:
    return Record(
        project="app",
        env="test",
        version="1",
        digest="sha256:old",
        commit=None,
        deployed_at="2026-01-01T00:00:00Z",
        deployed_by="ci",
        kind="deploy",
        verified=True,
        objects={
            p: ManagedObject(p, "notebook", "PYTHON", sha, object_id=1, modified_at=mod)
            for p, (sha, mod) in objects.items()
        },
        directories=dirs,
    )


def plan(desired, listing, rec, digest="sha256:new"):
    return make_plan(desired, listing, rec, env="test", root=ROOT, version="2", digest=digest)


CASES = [
    # (name, desired, listing, record, expected {path: (action, drift, backup)})
    ("new object is created", [nb("a")], [], None, {"a": ("create", False, False)}),
    (
        "same hash, same modified_at is unchanged",
        [nb("a", "h")],
        [remote("a", mod=5)],
        record({"a": ("h", 5)}),
        {"a": ("unchanged", False, False)},
    ),
    (
        "new hash is an update",
        [nb("a", "h2")],
        [remote("a", mod=5)],
        record({"a": ("h1", 5)}),
        {"a": ("update", False, False)},
    ),
    (
        "hand edit is an update flagged as drift and backed up",
        [nb("a", "h")],
        [remote("a", mod=9)],
        record({"a": ("h", 5)}),
        {"a": ("update", True, True)},
    ),
    (
        "an object we never recorded is overwritten after a backup",
        [nb("a", "h")],
        [remote("a")],
        None,
        {"a": ("update", False, True)},
    ),
    (
        "recorded object missing from the workspace is created again",
        [nb("a", "h")],
        [],
        record({"a": ("h", 5)}),
        {"a": ("create", False, False)},
    ),
    (
        "recorded object gone from the artifact is deleted",
        [],
        [remote("a", mod=5)],
        record({"a": ("h", 5)}),
        {"a": ("delete", False, False)},
    ),
    (
        "hand-edited object gone from the artifact is backed up then deleted",
        [],
        [remote("a", mod=6)],
        record({"a": ("h", 5)}),
        {"a": ("delete", True, True)},
    ),
    (
        "recorded object already gone needs nothing",
        [],
        [],
        record({"a": ("h", 5)}),
        {},
    ),
    (
        "a change of language replaces the object",
        [nb("a", "h", "SQL")],
        [remote("a", lang="PYTHON", mod=5)],
        record({"a": ("h", 5)}),
        {"a": ("update", False, False)},
    ),
]


@pytest.mark.parametrize(
    ("desired", "listing", "rec", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_actions(desired, listing, rec, expected):
    p = plan(desired, listing, rec)
    got = {c.path: (c.action, c.drift, c.backup) for c in p.changes}
    assert got == expected


def test_objects_we_never_deployed_are_unmanaged_and_left_alone():
    p = plan([nb("a")], [remote("a"), remote("scratch/mine", "FILE", None)], None)
    assert p.unmanaged == ("scratch/mine",)
    assert all(c.path != "scratch/mine" for c in p.changes)


def test_our_state_folder_is_never_part_of_the_plan():
    listing = [folder(".dbx-promote"), remote(".dbx-promote/deployment.json", "FILE", None)]
    p = plan([nb("a")], listing, None)
    assert p.unmanaged == ()
    assert [c.path for c in p.changes] == ["a"]


def test_language_change_is_marked_replace():
    p = plan([nb("a", "h", "SQL")], [remote("a", lang="PYTHON", mod=5)], record({"a": ("h", 5)}))
    assert p.changes[0].replace is True


def test_mkdirs_lists_only_the_deepest_missing_folders():
    p = plan([nb("x/y/z/a"), nb("x/b"), nb("c")], [folder("x")], None)
    assert p.mkdirs == ("x/y/z",)
    assert set(p.new_dirs) == {"x/y", "x/y/z"}


def test_folders_we_created_are_removed_when_they_end_up_empty():
    rec = record({"old/a": ("h", 5), "keep": ("h", 5)}, dirs=("old",))
    p = plan([nb("keep", "h")], [folder("old"), remote("old/a", mod=5), remote("keep", mod=5)], rec)
    assert p.rmdirs == ("old",)


def test_folders_holding_someone_elses_objects_are_kept():
    rec = record({"old/a": ("h", 5)}, dirs=("old",))
    listing = [folder("old"), remote("old/a", mod=5), remote("old/theirs", "FILE", None)]
    p = plan([], listing, rec)
    assert p.rmdirs == ()


def test_a_folder_where_the_artifact_has_a_notebook_is_a_conflict():
    p = plan([nb("a")], [folder("a"), remote("a/theirs", "FILE", None)], None)
    assert p.conflicts and "a is a folder" in p.conflicts[0]


def test_same_verified_digest_with_no_changes_is_a_noop():
    rec = record({"a": ("h", 5)})
    assert plan([nb("a", "h")], [remote("a", mod=5)], rec, digest="sha256:old").is_noop
    assert not plan([nb("a", "h")], [remote("a", mod=5)], rec, digest="sha256:new").is_noop


def test_signature_ignores_timestamps_but_not_changes():
    rec = record({"a": ("h", 5)})
    one = plan([nb("a", "h2")], [remote("a", mod=5)], rec)
    same = plan([nb("a", "h2")], [RemoteObject(f"{ROOT}/a", "NOTEBOOK", "PYTHON", 999, 5)], rec)
    other = plan([nb("a", "h2"), nb("b")], [remote("a", mod=5)], rec)
    assert one.signature() == same.signature()
    assert one.signature() != other.signature()


def test_environment_notebook_is_valid_python_defining_env_and_config():
    src = environment_notebook("prod", {"catalog": "main", "to": "{user}"}, "ci@example.com")
    ns: dict = {}
    exec(src.decode(), ns)
    assert ns["ENV"] == "prod"
    assert ns["CONFIG"] == {"catalog": "main", "to": "ci@example.com"}
    assert src.startswith(b"# Databricks notebook source\n")
