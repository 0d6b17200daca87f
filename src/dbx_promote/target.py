"""What a deploy makes the folder hold: an artifact's objects plus `_environment`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dbx_promote.artifact import Artifact, ManifestObject
from dbx_promote.config import Environment
from dbx_promote.errors import ArtifactError
from dbx_promote.layout import ENVIRONMENT_NOTEBOOK, reserved_name_problem
from dbx_promote.plan import DesiredObject, environment_notebook

#: Reads one desired object's bytes, by path relative to root.
Content = Callable[[str], bytes]


@dataclass(frozen=True)
class Target:
    """The desired state of a folder: an artifact's objects and the generated notebook."""

    artifact: Artifact
    desired: tuple[DesiredObject, ...]
    environment_source: str

    @property
    def version(self) -> str:
        return self.artifact.manifest.version

    @property
    def digest(self) -> str:
        return self.artifact.digest

    @property
    def project(self) -> str:
        return self.artifact.manifest.project

    @property
    def commit(self) -> str | None:
        return self.artifact.manifest.commit

    @property
    def commit_time(self) -> str | None:
        return self.artifact.manifest.commit_time

    @property
    def hashes(self) -> dict[str, str]:
        """{path: sha256} of every desired object."""
        return {d.path: d.sha256 for d in self.desired}

    @contextmanager
    def content(self) -> Iterator[Content]:
        """``read(path)`` for the block's duration: one zip handle, every read hash-checked."""
        by_path: dict[str, ManifestObject] = {
            o.workspace_path: o for o in self.artifact.manifest.objects
        }
        env_bytes = self.environment_source.encode()
        with self.artifact.reader() as read_object:

            def read(path: str) -> bytes:
                if path == ENVIRONMENT_NOTEBOOK:
                    return env_bytes
                return read_object(by_path[path])

            yield read


def target_from_artifact(
    artifact: Artifact, env: Environment, user: str, *, environment_source: str | None = None
) -> Target:
    """The desired state for ``artifact`` in ``env`` (artifact objects + `_environment`).

    Raises `ArtifactError` when an object uses a name dbx-promote reserves.
    """
    desired: list[DesiredObject] = []
    for o in artifact.manifest.objects:
        problem = reserved_name_problem(o.workspace_path)
        if problem:
            raise ArtifactError(problem)
        desired.append(
            DesiredObject(o.workspace_path, o.kind, o.language, o.format, o.sha256, o.size)
        )
    env_src = (
        environment_source
        if environment_source is not None
        else environment_notebook(env.name, env.parameters, user).decode()
    )
    env_bytes = env_src.encode()
    desired.append(
        DesiredObject(
            ENVIRONMENT_NOTEBOOK,
            "notebook",
            "PYTHON",
            "SOURCE",
            hashlib.sha256(env_bytes).hexdigest(),
            len(env_bytes),
        )
    )
    return Target(artifact, tuple(sorted(desired, key=lambda d: d.path)), env_src)
