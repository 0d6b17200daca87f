"""The release store, `.dbx-promote/releases/`: the artifacts rollback and promote use.

A release over the workspace's 10 MB import limit is stored in parts; fetching joins
them and verifies the result is exactly the artifact the record names.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dbx_promote.artifact import Artifact, open_artifact
from dbx_promote.errors import ArtifactError, DbxPromoteError, ReleaseNotFound
from dbx_promote.layout import RELEASES_DIR
from dbx_promote.parallel import run_parallel
from dbx_promote.record import MAX_RELEASE_PARTS, RELEASE_PART_BYTES, ReleaseRef
from dbx_promote.state import Folder


class ReleaseStore:
    """Stores, fetches and prunes the releases of one folder."""

    def __init__(self, folder: Folder, part_bytes: int = RELEASE_PART_BYTES) -> None:
        self.folder = folder
        self.part_bytes = part_bytes

    def ref_for(self, artifact: Artifact, known: Iterable[ReleaseRef]) -> ReleaseRef:
        """The store entry of ``artifact``: the known one, or where a new one goes."""
        for ref in known:
            if ref.digest == artifact.digest:
                return ref
        m = artifact.manifest
        name = f"{m.project}-{m.version}-{artifact.digest.split(':')[-1][:12]}.zip"
        parts = max(1, -(-Path(artifact.path).stat().st_size // self.part_bytes))
        if parts > MAX_RELEASE_PARTS:  # the record could not name it
            raise ArtifactError(
                f"{artifact.path.name} needs {parts} release files of {self.part_bytes} "
                f"bytes, over {MAX_RELEASE_PARTS}; split the project"
            )
        return ReleaseRef(m.version, artifact.digest, f"{RELEASES_DIR}/{name}", parts)

    def store(self, artifact: Artifact, ref: ReleaseRef, known: tuple[ReleaseRef, ...]) -> None:
        """Upload ``artifact`` as ``ref`` unless the store already holds it."""
        if ref in known:
            return
        ws = self.folder.ws
        if not known:
            ws.mkdirs(self.folder.abs(RELEASES_DIR))
        with Path(artifact.path).open("rb") as f:
            for part in ref.files:
                ws.import_file(self.folder.abs(part), f.read(self.part_bytes))

    @contextmanager
    def fetch(self, ref: ReleaseRef) -> Iterator[Artifact]:
        """Download a stored release and verify it is the artifact the record names.

        Raises `ReleaseNotFound` when the zip is gone, `ArtifactError` when it was altered.
        """
        with tempfile.TemporaryDirectory(prefix="dbx-promote-release-") as tmp:
            path = Path(tmp) / Path(ref.file).name
            with path.open("wb") as out:
                for part in ref.files:
                    raw = self.folder.ws.read_optional(self.folder.abs(part))
                    if raw is None:
                        raise ReleaseNotFound(
                            f"release {ref.version} is recorded but {self.folder.abs(part)} is "
                            "gone from the release store; deploy that artifact again from its build"
                        )
                    out.write(raw)
            artifact = open_artifact(path)
            if artifact.digest != ref.digest:
                raise ArtifactError(
                    f"stored release {ref.file} has digest {artifact.digest}, but the record "
                    f"says {ref.digest}; the release store was altered"
                )
            yield artifact

    def delete(self, ref: ReleaseRef, why: str) -> None:
        """Remove a release's files; a failure only warns (an orphan costs space, no more)."""
        for part in ref.files:
            try:
                self.folder.ws.delete(self.folder.abs(part))
            except DbxPromoteError as exc:
                self.folder.events.warning(f"could not remove {why} release file {part}: {exc}")

    def prune(self, refs: Iterable[ReleaseRef]) -> None:
        """Remove releases no longer kept (``keep_releases``)."""
        run_parallel(lambda ref: self.delete(ref, "an old"), refs, self.folder.workers)
