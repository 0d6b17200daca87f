"""Who is calling: the emulator's principals (users and service principals with groups).

Without principals every token is the configured user and a workspace admin, as before.
With them, a token names one principal (``TOKEN=NAME[:GROUP,...]``); an unlisted token is
refused with 401. A NAME that is a UUID is a service principal's application id, any other
a user name. Every principal is in the built-in ``users`` group.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field

ADMINS = "admins"
USERS = "users"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]*$")


def is_uuid(name: str) -> bool:
    """Whether ``name`` has the shape of a service principal's application id."""
    return bool(_UUID.match(name))


@dataclass(frozen=True)
class Principal:
    """A caller: ``name`` (user name or application id), its token and explicit groups."""

    token: str
    name: str
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_service_principal(self) -> bool:
        """True for a service principal (its name is an application id)."""
        return is_uuid(self.name)

    @property
    def principal_key(self) -> str:
        """The access-control field that names it: ``user_name`` or ``service_principal_name``."""
        return "service_principal_name" if self.is_service_principal else "user_name"

    @property
    def is_admin(self) -> bool:
        """Members of ``admins`` may do anything."""
        return ADMINS in self.groups

    @property
    def all_groups(self) -> frozenset[str]:
        """Its groups plus the built-in ``users`` every principal belongs to."""
        return frozenset((*self.groups, USERS))

    @property
    def display_name(self) -> str:
        """What the workspace shows: the part of a user name before ``@``."""
        if self.is_service_principal:
            return f"sp-{self.name[:8]}"
        return self.name.split("@")[0]

    def scim_me(self) -> dict[str, object]:
        """The SCIM ``Me`` document for this principal, groups included."""
        doc: dict[str, object] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": _numeric_id(self.name),
            "userName": self.name,
            "displayName": self.display_name,
            "active": True,
            "groups": [
                {"display": g, "value": _numeric_id("group:" + g), "type": "direct"}
                for g in self.groups
            ],
        }
        if self.is_service_principal:
            doc["applicationId"] = self.name
        else:
            doc["emails"] = [{"value": self.name, "type": "work", "primary": True}]
        return doc


def _numeric_id(text: str) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))


def parse_principal(spec: str) -> Principal:
    """Parse ``TOKEN=NAME[:GROUP,...]``; raise ValueError (never quoting the token)."""
    token, sep, rest = spec.partition("=")
    if not sep or not token.strip():
        raise ValueError("a principal must be TOKEN=NAME[:GROUP,...]")
    name, _, groups_text = rest.partition(":")
    name = name.strip()
    if not name or "/" in name:
        raise ValueError("a principal needs a NAME without '/' after TOKEN=")
    groups = tuple(g.strip() for g in groups_text.split(",") if g.strip())
    for group in groups:
        if not _GROUP.match(group):
            raise ValueError(f"principal {name}: bad group name {group!r}")
    return Principal(token.strip(), name, tuple(g for g in groups if g != USERS))


class Principals:
    """The token -> principal table; empty means open mode (every token is an admin)."""

    def __init__(self, principals: list[Principal] | None = None) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Principal] = {}
        for p in principals or []:
            self.add(p)

    def add(self, principal: Principal) -> None:
        """Add or replace the principal for its token."""
        with self._lock:
            self._by_token[principal.token] = principal

    def clear(self) -> None:
        """Back to open mode."""
        with self._lock:
            self._by_token.clear()

    @property
    def enforcing(self) -> bool:
        """True when principals are configured, so ACLs are enforced."""
        with self._lock:
            return bool(self._by_token)

    def lookup(self, token: str) -> Principal | None:
        """The principal for ``token``, or None when it is not listed."""
        with self._lock:
            return self._by_token.get(token)

    def all(self) -> list[Principal]:
        """Every configured principal."""
        with self._lock:
            return list(self._by_token.values())
