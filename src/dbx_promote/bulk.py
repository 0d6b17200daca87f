"""Pure bulk planning: which new folders one directory import each can create, and the zips.

The workspace imports a whole folder in one request (`SOURCE` without `language`, a zip as
content) but only as a new name: it neither merges into nor replaces an existing folder.
So only folders the plan creates from nothing qualify, each as one request, parents
before children. Workspace files stay one import each: what a directory import does with
non-notebook entries is undocumented (a `SOURCE` export leaves them out).

No I/O here: `plan_bulk` reads the plan and the desired objects' sizes; `build_zip` reads
the objects' bytes through the callable it is given.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from dbx_promote.plan import CREATE, DesiredObject, Plan

# What one directory import may carry, counted uncompressed: the service's 10 MB limit
# applies to the request's content, base64 in JSON (4/3 of the zip), and whether it also
# bounds the unpacked size is unknown; 7 MiB unpacked stays under every reading.
BULK_LIMIT = 7 * 1024 * 1024
# Per entry: local header + central directory record (both carry the name) + slack.
_ENTRY_OVERHEAD = 128

EXTENSIONS = {"PYTHON": "py", "SQL": "sql", "SCALA": "scala", "R": "r"}
HEADERS = {
    "PYTHON": b"# Databricks notebook source",
    "R": b"# Databricks notebook source",
    "SQL": b"-- Databricks notebook source",
    "SCALA": b"// Databricks notebook source",
}
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BulkImport:
    """One directory import: the new folder ``folder`` with the notebooks ``paths``.

    Paths are relative to the environment root; ``paths`` are inside ``folder``.
    """

    folder: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Wave:
    """Requests that can go at once: every parent they need exists before the wave."""

    imports: tuple[BulkImport, ...] = ()
    # New folders that no import in this wave can create (nothing of theirs fits in one
    # request): made with mkdirs so that the next wave's imports have their parent.
    mkdirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class BulkPlan:
    """How a plan's new folders are created in bulk, and what stays per object.

    ``carried`` are the creates the directory imports land; every other write of the
    plan is imported one by one, after the waves, once ``mkdirs`` (the leaves of the new
    folders no wave creates) exist.
    """

    waves: tuple[Wave, ...] = ()
    carried: frozenset[str] = frozenset()
    per_object: tuple[str, ...] = ()  # creates inside bulk folders the imports do not carry
    mkdirs: tuple[str, ...] = ()
    created_dirs: frozenset[str] = field(default_factory=frozenset)

    @property
    def imports(self) -> list[BulkImport]:
        return [i for w in self.waves for i in w.imports]


def _parent(path: str) -> str:
    return posixpath.dirname(path)


def _cost(d: DesiredObject) -> int:
    return d.size + 2 * len(d.path.encode()) + _ENTRY_OVERHEAD


class _Tree:
    """The new folders of a plan, with the creates directly in each."""

    def __init__(self, new_dirs: Iterable[str], creates: Iterable[DesiredObject]) -> None:
        self.dirs = set(new_dirs)
        self.children: dict[str, list[str]] = {d: [] for d in self.dirs}
        self.notebooks: dict[str, list[DesiredObject]] = {d: [] for d in self.dirs}
        self.files: dict[str, list[DesiredObject]] = {d: [] for d in self.dirs}
        for d in sorted(self.dirs):
            if _parent(d) in self.dirs:
                self.children[_parent(d)].append(d)
        for obj in creates:
            folder = _parent(obj.path)
            if folder in self.dirs:
                target = self.notebooks if obj.kind == "notebook" else self.files
                target[folder].append(obj)
        self._size: dict[str, int] = {}

    def tops(self) -> list[str]:
        return sorted(d for d in self.dirs if _parent(d) not in self.dirs)

    def subtree_notebooks(self, folder: str) -> list[DesiredObject]:
        found = list(self.notebooks[folder])
        for child in self.children[folder]:
            found.extend(self.subtree_notebooks(child))
        return found

    def size(self, folder: str) -> int:
        if folder not in self._size:
            own = sum(_cost(n) for n in self.notebooks[folder]) + _ENTRY_OVERHEAD
            self._size[folder] = own + sum(self.size(c) for c in self.children[folder])
        return self._size[folder]


def plan_bulk(plan: Plan, desired: Iterable[DesiredObject], *, limit: int = BULK_LIMIT) -> BulkPlan:
    """Group the plan's new folders into directory imports of at most ``limit`` bytes.

    A new top-level folder (one whose parent exists) that fits is one import. One that
    does not fit carries its own notebooks and the subfolders that fit; the rest of its
    subfolders are planned the same way in the next wave, once it exists. A notebook too
    large for any import, and every workspace file, stays per object.
    """
    creates = {c.path for c in plan.changes if c.action == CREATE and not c.replace}
    objects = [d for d in desired if d.path in creates]
    tree = _Tree(plan.new_dirs, objects)
    waves: list[Wave] = []
    pending = [t for t in tree.tops() if tree.subtree_notebooks(t)]
    carried: set[str] = set()
    created: set[str] = set()
    while pending:
        imports: list[BulkImport] = []
        mkdirs: list[str] = []
        later: list[str] = []
        for folder in pending:
            paths, rest = _pack(tree, folder, limit)
            if paths:
                imports.append(BulkImport(folder, tuple(sorted(paths))))
                carried.update(paths)
                created.update(_folders_of(folder, paths))
            else:
                mkdirs.append(folder)
                created.add(folder)
            later.extend(r for r in rest if tree.subtree_notebooks(r))
        waves.append(Wave(tuple(imports), tuple(mkdirs)))
        pending = sorted(later)
    bulk_roots = {i.folder for w in waves for i in w.imports} | {m for w in waves for m in w.mkdirs}
    per_object = sorted(
        d.path for d in objects if d.path not in carried and _under_any(d.path, bulk_roots)
    )
    missing = {d for d in tree.dirs if d not in created}
    leaves = sorted(d for d in missing if not any(o.startswith(d + "/") for o in missing))
    # Folders outside every bulk folder need nothing the waves create: they go with the
    # first wave instead of after the last.
    early = [d for d in leaves if d not in bulk_roots and not _under_any(d + "/x", bulk_roots)]
    if waves and early:
        first = waves[0]
        waves[0] = Wave(first.imports, first.mkdirs + tuple(early))
        leaves = [d for d in leaves if d not in early]
    return BulkPlan(
        waves=tuple(waves),
        carried=frozenset(carried),
        per_object=tuple(per_object),
        mkdirs=tuple(leaves),
        created_dirs=frozenset(created),
    )


def _pack(tree: _Tree, folder: str, limit: int) -> tuple[list[str], list[str]]:
    """(notebooks one import of ``folder`` carries, subfolders left for the next wave)."""
    if tree.size(folder) <= limit:
        return [n.path for n in tree.subtree_notebooks(folder)], []
    budget = limit - _ENTRY_OVERHEAD
    paths: list[str] = []
    for nb in sorted(tree.notebooks[folder], key=lambda n: n.path):
        if _cost(nb) <= budget:
            paths.append(nb.path)
            budget -= _cost(nb)
    rest: list[str] = []
    # Largest first: the subfolders that fit fill the request, the others wait a wave.
    for child in sorted(tree.children[folder], key=lambda c: (-tree.size(c), c)):
        if tree.size(child) <= budget:
            paths.extend(n.path for n in tree.subtree_notebooks(child))
            budget -= tree.size(child)
        else:
            rest.append(child)
    if not paths:
        return [], rest
    return paths, rest


def _folders_of(folder: str, paths: Iterable[str]) -> set[str]:
    """``folder`` and every folder between it and the notebooks it carries."""
    found = {folder}
    for p in paths:
        d = _parent(p)
        while d and d != folder:
            found.add(d)
            d = _parent(d)
    return found


def _under_any(path: str, folders: set[str]) -> bool:
    d = _parent(path)
    while d:
        if d in folders:
            return True
        d = _parent(d)
    return False


def entry_name(imp: BulkImport, obj: DesiredObject) -> str:
    """The zip entry of ``obj`` in ``imp``: ``<folder name>/<path inside>.<extension>``."""
    top = posixpath.basename(imp.folder)
    inside = obj.path[len(imp.folder) + 1 :]
    ext = "ipynb" if obj.format == "JUPYTER" else EXTENSIONS[obj.language or "PYTHON"]
    return f"{top}/{inside}.{ext}"


def build_zip(
    imp: BulkImport, desired: Mapping[str, DesiredObject], read: Callable[[str], bytes]
) -> bytes:
    """The zip for ``imp``, laid out as the workspace's own `SOURCE` export of a folder.

    Folder entries first (``name/``), then each notebook in source form starting with its
    language's header (added when the source lacks it, as a single import would), or as
    ``.ipynb``. Entries are sorted and dated 1980-01-01, so the same plan gives the same
    bytes.
    """
    out = io.BytesIO()
    top = posixpath.basename(imp.folder)
    folders = sorted(_folders_of(imp.folder, imp.paths))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in folders:
            inside = d[len(imp.folder) + 1 :]
            zf.writestr(_info(f"{top}/{inside}/" if inside else f"{top}/"), b"")
        for path in imp.paths:
            obj = desired[path]
            data = read(path)
            if obj.format != "JUPYTER":
                header = HEADERS[obj.language or "PYTHON"]
                if data.split(b"\n", 1)[0].rstrip(b"\r").rstrip() != header:
                    data = header + b"\n" + data
            zf.writestr(_info(entry_name(imp, obj)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o644 << 16
    return info


__all__ = [
    "BULK_LIMIT",
    "BulkImport",
    "BulkPlan",
    "Wave",
    "build_zip",
    "entry_name",
    "plan_bulk",
]
