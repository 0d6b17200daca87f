"""What a deploy already knows about its folder, and the few reads that bring it up to date.

A deploy lists the whole folder once, before it takes the lock. Listing it again after the
lock, and again to verify, costs one round trip per tree level each time. Under the lock
no other deploy writes, so what can have changed since is only what a person touched by
hand, and what this deploy wrote itself: when the plan writes or deletes a few paths, a
`get-status` of exactly those paths (all at once: one round trip) says whether the plan
still holds, and whether the writes landed as planned. Past `RECHECK_LIMIT` paths a
listing is cheaper in requests, and the callers list again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dbx_promote.layout import Layout
from dbx_promote.plan import UNCHANGED, Plan
from dbx_promote.remote import RemoteObject

# Up to this many paths, one get-status each beats listing every folder again.
RECHECK_LIMIT = 32


def touched_paths(plan: Plan) -> list[str] | None:
    """The paths the plan writes or deletes; None when there are too many to check."""
    paths = sorted({c.path for c in plan.changes if c.action != UNCHANGED})
    return paths if len(paths) <= RECHECK_LIMIT else None


def _state(obj: RemoteObject | None) -> tuple[object, ...] | None:
    if obj is None:
        return None
    return (obj.object_type, obj.language, obj.object_id, obj.modified_at)


def unchanged_since(
    listing: Iterable[RemoteObject], layout: Layout, now: Mapping[str, RemoteObject | None]
) -> bool:
    """Whether every path in ``now`` (relative to root) is as ``listing`` showed it."""
    live = layout.content(listing)
    for rel, obj in now.items():
        before = live.objects.get(rel)
        if before is None and rel in live.dirs:
            return False
        if _state(before) != _state(obj):
            return False
    return True


def patched(
    listing: Iterable[RemoteObject], layout: Layout, now: Mapping[str, RemoteObject | None]
) -> list[RemoteObject]:
    """``listing`` with the paths of ``now`` (relative to root) as they are now."""
    out = [o for o in listing if layout.relative(o.path) not in now]
    out.extend(obj for obj in now.values() if obj is not None)
    return out


__all__ = ["RECHECK_LIMIT", "patched", "touched_paths", "unchanged_since"]
