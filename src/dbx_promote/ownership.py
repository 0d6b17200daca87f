"""Who a deployment folder belongs to: the project and environment its record names.

Nothing else stops one owner's deploy from taking another's folder: a config with another
`project` pointing at an existing root would replace that project's notebooks, and a
`{user}` root that expands to another environment's root would make that environment run
this one's `_environment`. So a deploy refuses a folder whose record names another project
or environment, before its first write (dry runs too), and a hand-over is said out loud:
`--adopt`, written into the record and the history.

The config refuses what it can see already: two roots that are, or for some user can be,
one folder or one inside the other (`roots_may_meet`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dbx_promote.errors import FolderOwned
from dbx_promote.layout import LOCK_FILE, RECORD_FILE
from dbx_promote.record import Lock, Record

USER = "{user}"


@dataclass(frozen=True)
class Owner:
    """The project and environment a folder's record names."""

    project: str
    env: str

    @classmethod
    def of(cls, record: Record) -> Owner:
        return cls(record.project, record.env)

    def describe(self) -> str:
        return f"project '{self.project}', environment '{self.env}'"

    def to_dict(self) -> dict[str, str]:
        return {"project": self.project, "env": self.env}


def check_owner(
    record: Record | None, root: str, mine: Owner, *, adopt: bool, lock: Lock | None = None
) -> Owner | None:
    """The other owner this deploy takes the folder from (only with ``adopt``), or None
    when the folder is new or already ``mine``.

    Without a record, a ``lock`` left behind names the owner: a first deploy that died
    half-way has written its notebooks, and breaking its lock must not hand them to
    another project (locks written before they named one name no owner).

    Raises `FolderOwned` (exit 2) when another project or environment owns ``root``.
    """
    if record is not None:
        owner, named = Owner.of(record), f"its record {root}/{RECORD_FILE} names {record.version}"
    elif lock is not None and lock.project:
        owner = Owner(lock.project, lock.env)
        named = f"its lock {root}/{LOCK_FILE}, of an unfinished deploy of {lock.version}"
    else:
        return None
    if owner == mine:
        return None
    if adopt:
        return owner
    raise FolderOwned(
        f"{root} belongs to {owner.describe()} ({named}); this deploy is {mine.describe()} "
        f"and does not take it over: point '{mine.env}' at a root of its own, or, to hand "
        "the folder over on purpose (a renamed project or environment), deploy or promote "
        "with --adopt, which the record and the history keep"
    )


def deploying_as(
    record: Record | None, project: str, env: str, *, rollback_to: str | None
) -> Owner:
    """The owner a deploy of ``project``'s artifact into ``env`` deploys as.

    A rollback to a release from the folder's own store (``rollback_to``, its digest)
    brings back the folder's own past, whoever built it: a release stored before an
    --adopt names the old project, and refusing it as foreign made going back, the
    automatic rollback after failed tests too, impossible. It stays the record's.
    """
    if rollback_to and record and any(r.digest == rollback_to for r in record.releases):
        return Owner(record.project, env)
    return Owner(project, env)


def adoption_note(previous: Owner, mine: Owner) -> str:
    """The history's words for a hand-over."""
    return f"adopted from {previous.describe()} (--adopt) by {mine.describe()}"


def roots_may_meet(a: str, b: str) -> bool:
    """Whether two normalised roots are, or for some user (``{user}``) can be, one folder
    or one inside the other.

    Segment by segment over the shorter root: literal segments must be equal; one holding
    ``{user}`` matches any segment its pattern fits; two holding it (one user expands
    both) must be spelled the same.
    """
    sa, sb = a.strip("/").split("/"), b.strip("/").split("/")
    return all(_segments_may_meet(x, y) for x, y in zip(sa, sb, strict=False))


def _segments_may_meet(x: str, y: str) -> bool:
    if USER in x and USER in y:
        return x == y
    if USER in y:
        x, y = y, x
    if USER not in x:
        return x == y
    pattern = "[^/]+".join(re.escape(part) for part in x.split(USER))
    return re.fullmatch(pattern, y) is not None
