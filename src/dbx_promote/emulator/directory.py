"""Directory archives: what a directory import (``SOURCE`` without ``language``) reads, and
what a ``SOURCE``/``AUTO`` export of a folder writes.

The service documents neither layout; the emulator uses the export layout for both ways
(see docs/emulator.md, "Choices where the service is unverified"): entries are named
``<folder name>/<relative path>``, folders have their own ``name/`` entries, notebooks are
source files with their language's extension and header, and a notebook imported from
``.ipynb`` may come as ``<name>.ipynb``. On import the archive's single top-level folder,
when there is one, stands for the target folder, whatever it is called.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass

from dbx_promote.emulator.store import (
    AUTO_EXTENSIONS,
    FILE_TYPES,
    HEADERS,
    ApiError,
    header_of,
    invalid,
    ipynb_to_source,
)

# How a directory import treats the archive; `Controls.directory_import` picks one.
ACCEPT = "accept"
REFUSE = "refuse"  # answer 400, as a workspace that does not allow directory import might
DROP_ONE = "drop-one"  # land every object but the last notebook: "landed differently"
DIRECTORY_IMPORT_MODES = (ACCEPT, REFUSE, DROP_ONE)

# The uncompressed total a directory archive may unpack to: a zip bomb is refused.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class ArchiveObject:
    """One object a directory archive creates, relative to the target folder."""

    path: str  # "" never occurs; folders have object_type DIRECTORY
    object_type: str
    language: str | None = None
    content: bytes | None = None
    ipynb: bytes | None = None


def empty_archive() -> ApiError:
    """What the service answers for content that holds no importable item."""
    return invalid("The zip archive contains no items.")


def is_zip(content: bytes) -> bool:
    """Whether ``content`` is a readable zip archive."""
    if not content.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(content)):
            return True
    except zipfile.BadZipFile:
        return False


def read_archive(content: bytes) -> list[ArchiveObject]:
    """The folders and notebooks a directory archive creates, parents first.

    Raises `ApiError` 400: not a zip or no notebook in it ("The zip archive contains no
    items."), a zip inside the archive, a name that leaves the folder, or a zip bomb.
    Entries that are not notebooks (no header, unknown extension) are skipped.
    """
    if not is_zip(content):
        raise empty_archive()
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        infos = zf.infolist()
        names = [_safe_name(i.filename) for i in infos]
        if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
            raise invalid("The zip archive is too large once unpacked.")
        strip = _common_top(names)
        objects: dict[str, ArchiveObject] = {}
        for info, name in zip(infos, names, strict=True):
            rel = name[len(strip) :] if strip else name
            if not rel:
                continue
            if info.is_dir():
                _add_dirs(objects, rel.rstrip("/") + "/x")
                continue
            if posixpath.splitext(rel)[1].lower() == ".zip":
                raise invalid("Zip files within directories are not supported.")
            obj = _notebook(rel, zf.read(info))
            if obj is not None:
                _add_dirs(objects, obj.path)
                objects[obj.path] = obj
    if not any(o.object_type == "NOTEBOOK" for o in objects.values()):
        raise empty_archive()
    return sorted(objects.values(), key=lambda o: (o.path.count("/"), o.path))


def _safe_name(name: str) -> str:
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in (".", "..") for p in parts):
        raise invalid(f"The zip archive has an entry outside its folder: {name!r}.")
    return name


def _common_top(names: list[str]) -> str:
    """``"top/"`` when every entry sits in one top-level folder (the export layout)."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or not all("/" in n for n in names):
        return ""
    return tops.pop() + "/"


def _add_dirs(objects: dict[str, ArchiveObject], path: str) -> None:
    parts = path.split("/")[:-1]
    for i in range(len(parts)):
        d = "/".join(parts[: i + 1])
        existing = objects.get(d)
        if existing is not None and existing.object_type != "DIRECTORY":
            raise invalid(f"The zip archive has both a notebook and a folder named {d!r}.")
        objects.setdefault(d, ArchiveObject(d, "DIRECTORY"))


def _notebook(rel: str, data: bytes) -> ArchiveObject | None:
    stem, ext = posixpath.splitext(rel)
    if not stem or stem.endswith("/"):
        return None
    if ext.lower() == ".ipynb":
        return ArchiveObject(stem, "NOTEBOOK", "PYTHON", ipynb_to_source(data), data)
    language = AUTO_EXTENSIONS.get(ext.lower())
    if language and header_of(data) == HEADERS[language]:
        return ArchiveObject(stem, "NOTEBOOK", language, data)
    return None


def write_archive(top: str, objects: list[ArchiveObject], *, files: bool) -> bytes:
    """The export of a folder named ``top``: its folders and notebooks (and files with
    ``files``) under ``top/``, deflated, in path order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(f"{top}/"), b"")
        for obj in sorted(objects, key=lambda o: o.path):
            name = f"{top}/{obj.path}"
            if obj.object_type == "DIRECTORY":
                zf.writestr(zipfile.ZipInfo(name + "/"), b"")
            elif obj.object_type == "NOTEBOOK":
                ext = FILE_TYPES[obj.language or "PYTHON"]
                zf.writestr(f"{name}.{ext}", obj.content or b"")
            elif files:
                zf.writestr(name, obj.content or b"")
    return out.getvalue()
