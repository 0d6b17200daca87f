"""What the workspace reports about one object (no SDK types, so planning stays pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteObject:
    """One object as the workspace reports it."""

    path: str
    object_type: str
    language: str | None = None
    object_id: int | None = None
    modified_at: int | None = None
    size: int | None = None

    @property
    def is_dir(self) -> bool:
        return self.object_type == "DIRECTORY"
