"""The restore plan is pure too: (release, what the failed deploy sent, listing) -> plan."""

from __future__ import annotations

from dataclasses import replace

from dbx_promote.layout import Layout
from dbx_promote.restore import BackToNothing, BackToRelease, ContentUnknown, plan_restore
from test_plan import ROOT, folder, nb, record, remote

LAYOUT = Layout(ROOT)


def rows(plan) -> dict[str, str]:
    return {c.path: c.action for c in plan.changes}


def back_to(objects, dirs=()):
    rec = record(objects, dirs)
    from dbx_promote.record import ReleaseRef

    ref = ReleaseRef("1", "sha256:old", ".dbx-promote/releases/app-1.zip")
    return BackToRelease(replace(rec, releases=(ref,)), ref)


def test_our_own_write_during_a_failed_deploy_is_rewritten_not_taken_for_a_hand_edit():
    plan = plan_restore(
        (nb("a", "h"),),
        frozenset({ContentUnknown("a")}),
        (),
        back_to({"a": ("h", 5)}),
        [remote("a", mod=9)],
        LAYOUT,
    )
    (change,) = plan.changes
    assert (change.action, change.drift, change.backup) == ("update", False, False)


def test_an_object_the_failed_deploy_did_not_touch_is_left_alone_even_if_edited():
    plan = plan_restore(
        (nb("a", "h"),), frozenset(), (), back_to({"a": ("h", 5)}), [remote("a", mod=9)], LAYOUT
    )
    assert rows(plan) == {"a": "unchanged"}


def test_what_the_failed_deploy_created_is_deleted_and_its_new_folders_removed():
    plan = plan_restore(
        (nb("a", "h"),),
        frozenset({ContentUnknown("new/b")}),
        ("new",),
        back_to({"a": ("h", 1)}),
        [remote("a"), folder("new"), remote("new/b")],
        LAYOUT,
    )
    assert rows(plan) == {"a": "unchanged", "new/b": "delete"}
    assert plan.rmdirs == ("new",)


def test_what_the_failed_deploy_deleted_is_created_again():
    plan = plan_restore(
        (nb("a", "h"),),
        frozenset({ContentUnknown("a")}),
        (),
        back_to({"a": ("h", 1)}),
        [],
        LAYOUT,
    )
    assert rows(plan) == {"a": "create"}


def test_without_a_release_only_what_it_created_is_removed():
    previous = record({"a": ("h", 1)})
    plan = plan_restore(
        (),
        frozenset({ContentUnknown("a"), ContentUnknown("b")}),
        (),
        BackToNothing(previous),
        [remote("a", mod=7), remote("b")],
        LAYOUT,
    )
    assert rows(plan) == {"b": "delete"}
    assert plan.end_state == {}
