"""Building, versioning and verifying artifacts.

Git state comes from real throwaway repositories; every verification refusal has its own
crafted zip and is checked both in the library and through the CLI (exit code, one line).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from dbx_promote.artifact import (
    CONTENT_DIR,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Artifact,
    BuildOptions,
    Manifest,
    build_artifact,
    compute_version,
    open_artifact,
    verify_artifact,
)
from dbx_promote.cli import main
from dbx_promote.errors import ArtifactError, BuildError

SAMPLE = Path(__file__).parent.parent / "notebooks"
HEADER = "# Databricks notebook source\n"


@pytest.fixture(autouse=True)
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic git, independent of the machine's configuration."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR", "GIT_COMMITTER"):
        monkeypatch.setenv(f"{var}_NAME", "t")
        monkeypatch.setenv(f"{var}_EMAIL", "t@e")
        monkeypatch.setenv(f"{var}_DATE", "2024-05-01T12:00:00Z")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def make_repo(path: Path) -> Path:
    """A repository holding a copy of the sample notebooks, one commit."""
    shutil.copytree(SAMPLE, path / "notebooks")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def commit_change(repo: Path, name: str = "notebooks/extra.py") -> None:
    file = repo / name
    file.write_text(HEADER + f"print({len(git(repo, 'log', '--oneline').splitlines())})\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", f"change {name}")


def build(source: Path, out: Path, **kwargs: object) -> Artifact:
    options = BuildOptions(project="sales", source=source, **kwargs)  # type: ignore[arg-type]
    return build_artifact(options, out)


# --- versioning ------------------------------------------------------------------------------


def test_tag_on_head_gives_the_release_version(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "tag", "v1.4.3")
    version, commit, commit_time = compute_version(repo, None, release=True)
    assert version == "1.4.3"
    assert commit == git(repo, "rev-parse", "HEAD")
    assert commit_time == "2024-05-01T12:00:00Z"


def test_commits_after_the_last_tag_give_a_dev_version(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "tag", "v1.4.3")
    commit_change(repo, "notebooks/a.py")
    commit_change(repo, "notebooks/b.py")
    sha = git(repo, "rev-parse", "HEAD")
    assert compute_version(repo, None, False)[0] == f"1.4.3.dev2+g{sha[:12]}"


def test_without_tags_the_base_is_0_0_0_and_counts_all_commits(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    commit_change(repo)
    sha = git(repo, "rev-parse", "HEAD")
    assert compute_version(repo, None, False)[0] == f"0.0.0.dev2+g{sha[:12]}"


def test_non_release_tags_are_ignored(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "tag", "nightly")
    assert compute_version(repo, None, False)[0].startswith("0.0.0.dev1+g")


def test_dirty_tree_adds_dirty(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "notebooks" / "new.py").write_text(HEADER)
    assert compute_version(repo, None, False)[0].endswith(".dirty")
    git(repo, "tag", "v2.0.0")
    assert compute_version(repo, None, False)[0] == "2.0.0+dirty"


def test_dirty_check_covers_only_the_source_folder(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "README.md").write_text("notes\n")
    assert not compute_version(repo / "notebooks", None, False)[0].endswith("dirty")


def test_release_build_of_a_dirty_tree_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "tag", "v1.0.0")
    (repo / "notebooks" / "lib" / "helpers.py").write_text("changed\n")
    with pytest.raises(BuildError, match="uncommitted changes"):
        compute_version(repo, None, release=True)


def test_version_override_wins_and_keeps_the_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    version, commit, _ = compute_version(repo, "9.9.9-rc1", False)
    assert (version, commit) == ("9.9.9-rc1", git(repo, "rev-parse", "HEAD"))


def test_outside_git_a_version_is_required(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not in a git repository"):
        compute_version(tmp_path, None, False)
    assert compute_version(tmp_path, "1.0.0", False) == ("1.0.0", None, None)


def test_version_unusable_in_a_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not usable in a file name"):
        compute_version(tmp_path, "../1.0", False)


def test_shallow_clone_without_a_tag_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    commit_change(repo)
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", "shallow")
    with pytest.raises(BuildError, match="shallow git clone"):
        compute_version(tmp_path / "shallow", None, False)


# --- building --------------------------------------------------------------------------------


def test_build_writes_project_version_zip_with_manifest(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    git(repo, "tag", "v1.0.0")
    artifact = build(repo / "notebooks", tmp_path / "dist")
    assert artifact.path == tmp_path / "dist" / "sales-1.0.0.zip"
    assert artifact.version == "1.0.0" and artifact.project == "sales"
    assert artifact.digest == "sha256:" + hashlib.sha256(artifact.path.read_bytes()).hexdigest()
    m = artifact.manifest
    assert m.schema_version == SCHEMA_VERSION and m.commit == git(repo, "rev-parse", "HEAD")
    assert [o.path for o in m.objects] == sorted(o.path for o in m.objects)
    with zipfile.ZipFile(artifact.path) as zf:
        names = zf.namelist()
        infos = zf.infolist()
    assert names == [MANIFEST_NAME] + [CONTENT_DIR + o.path for o in m.objects]
    assert {i.date_time for i in infos} == {(2024, 5, 1, 12, 0, 0)}
    assert {i.external_attr for i in infos} == {(stat.S_IFREG | 0o644) << 16}
    assert all(i.extra == b"" for i in infos)
    helpers = next(o for o in m.objects if o.path == "lib/helpers.py")
    assert artifact.read(helpers) == (repo / "notebooks/lib/helpers.py").read_bytes()
    assert not [p for p in (tmp_path / "dist").iterdir() if p.name.endswith(".tmp")]


def test_manifest_round_trips_through_dict(tmp_path: Path) -> None:
    artifact = build(SAMPLE, tmp_path, version="1.0.0")
    assert Manifest.from_dict(artifact.manifest.to_dict()) == artifact.manifest


def test_source_date_epoch_sets_the_entry_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    artifact = build(SAMPLE, tmp_path, version="1.0.0")
    with zipfile.ZipFile(artifact.path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}


def test_outside_git_entries_get_a_fixed_1980_date(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(SAMPLE, src)
    artifact = build(src, tmp_path / "dist", version="1.0.0")
    assert artifact.manifest.commit is None
    with zipfile.ZipFile(artifact.path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_same_commit_in_two_clones_builds_identical_bytes(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin")
    digests = []
    for i, name in enumerate(("clone-a", "deeper/path/clone-b")):
        git(tmp_path, "clone", "-q", str(origin), name)
        clone = tmp_path / name
        for n, file in enumerate(sorted((clone / "notebooks").rglob("*"))):
            os.utime(file, (1_000_000 + 7919 * n * (i + 1), 2_000_000 + 104729 * n * (i + 1)))
        digests.append(build(clone / "notebooks", tmp_path / f"dist-{i}").digest)
    assert digests[0] == digests[1]
    a, b = (sorted((tmp_path / f"dist-{i}").iterdir())[0] for i in range(2))
    assert a.read_bytes() == b.read_bytes()


def test_failed_build_leaves_no_artifact(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text(HEADER)
    (src / "a.sql").write_text("-- Databricks notebook source\n")
    with pytest.raises(BuildError):
        build(src, tmp_path / "dist", version="1.0.0")
    assert not (tmp_path / "dist").exists()


def test_kept_outputs_are_stored_verbatim(tmp_path: Path) -> None:
    src = Path(__file__).parent / "scenarios" / "discovery"
    artifact = build(src, tmp_path, version="1.0.0", strip_outputs=False)
    obj = next(o for o in artifact.manifest.objects if o.path == "with_outputs.ipynb")
    assert artifact.read(obj) == (src / "with_outputs.ipynb").read_bytes()


def test_project_name_unusable_in_a_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="project name"):
        build_artifact(BuildOptions(project="a/b", source=SAMPLE, version="1"), tmp_path)


# --- verification ----------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path: Path) -> Artifact:
    return build(SAMPLE, tmp_path / "good", version="1.0.0")


def entries_of(artifact: Artifact) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(artifact.path) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def write_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are the point of one scenario
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def with_manifest(artifact: Artifact, edit: Callable[[dict[str, object]], None]) -> bytes:
    d = artifact.manifest.to_dict()
    edit(d)
    return json.dumps(d).encode()


def craft_not_a_zip(good: Artifact, out: Path) -> Path:
    out.write_text("hello, not a zip\n")
    return out


def craft_truncated(good: Artifact, out: Path) -> Path:
    out.write_bytes(good.path.read_bytes()[: good.path.stat().st_size // 2])
    return out


def craft_missing_manifest(good: Artifact, out: Path) -> Path:
    return write_zip(out, [(n, d) for n, d in entries_of(good) if n != MANIFEST_NAME])


def craft_manifest_not_json(good: Artifact, out: Path) -> Path:
    return write_zip(out, [(n, b"{oops" if n == MANIFEST_NAME else d) for n, d in entries_of(good)])


def craft_manifest_bad_shape(good: Artifact, out: Path) -> Path:
    bad = with_manifest(good, lambda d: d.pop("objects"))
    return write_zip(out, [(n, bad if n == MANIFEST_NAME else d) for n, d in entries_of(good)])


def craft_manifest_wrong_schema(good: Artifact, out: Path) -> Path:
    bad = with_manifest(good, lambda d: d.update(schema_version=99))
    return write_zip(out, [(n, bad if n == MANIFEST_NAME else d) for n, d in entries_of(good)])


def craft_manifest_unsafe_workspace_path(good: Artifact, out: Path) -> Path:
    def edit(d: dict[str, object]) -> None:
        d["objects"][0]["workspace_path"] = "../escape"  # type: ignore[index]

    bad = with_manifest(good, edit)
    return write_zip(out, [(n, bad if n == MANIFEST_NAME else d) for n, d in entries_of(good)])


def craft_manifest_redirected_workspace_path(good: Artifact, out: Path) -> Path:
    def edit(d: dict[str, object]) -> None:
        d["objects"][0]["workspace_path"] = "ingest/load_orders"  # type: ignore[index]

    bad = with_manifest(good, edit)
    return write_zip(out, [(n, bad if n == MANIFEST_NAME else d) for n, d in entries_of(good)])


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


def craft_hash_mismatch(good: Artifact, out: Path) -> Path:
    entries = entries_of(good)
    name, data = entries[1]
    entries[1] = (name, _flip(data))  # same size, other bytes
    return write_zip(out, list(entries))


def craft_size_mismatch(good: Artifact, out: Path) -> Path:
    entries = entries_of(good)
    entries[1] = (entries[1][0], entries[1][1] + b"\n")
    return write_zip(out, list(entries))


def craft_extra_entry(good: Artifact, out: Path) -> Path:
    return write_zip(out, [*entries_of(good), ("src/sneaky.py", HEADER.encode())])


def craft_missing_entry(good: Artifact, out: Path) -> Path:
    return write_zip(out, [e for i, e in enumerate(entries_of(good)) if i != 1])


def craft_dotdot(good: Artifact, out: Path) -> Path:
    return write_zip(out, [*entries_of(good), ("src/../../evil.py", b"x")])


def craft_absolute(good: Artifact, out: Path) -> Path:
    return write_zip(out, [*entries_of(good), ("/etc/evil.py", b"x")])


def craft_backslash(good: Artifact, out: Path) -> Path:
    return write_zip(out, [*entries_of(good), ("src\\evil.py", b"x")])


def craft_symlink(good: Artifact, out: Path) -> Path:
    link = zipfile.ZipInfo("src/link.py")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return write_zip(out, [*entries_of(good), (link, b"/etc/passwd")])


def craft_encrypted(good: Artifact, out: Path) -> Path:
    write_zip(out, entries_of(good))
    data = bytearray(out.read_bytes())
    offset = data.index(b"PK\x01\x02")  # the manifest's central directory record
    data[offset + 8] |= 0x1
    out.write_bytes(bytes(data))
    return out


def craft_corrupt_deflate(good: Artifact, out: Path) -> Path:
    entries = entries_of(good)
    write_zip(out, entries)
    data = bytearray(out.read_bytes())
    start = data.index(b"PK\x03\x04", 4)  # local header of the first object
    name_len, extra_len = struct.unpack("<HH", data[start + 26 : start + 30])
    body = start + 30 + name_len + extra_len
    data[body : body + 8] = b"\xff" * 8
    out.write_bytes(bytes(data))
    return out


def craft_duplicate(good: Artifact, out: Path) -> Path:
    entries = entries_of(good)
    return write_zip(out, [*entries, entries[1]])


def craft_zip_bomb(good: Artifact, out: Path) -> Path:
    """An entry whose central directory claims 2 GiB for a few bytes."""
    write_zip(out, entries_of(good))
    data = bytearray(out.read_bytes())
    offset = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 1)  # second entry
    data[offset + 24 : offset + 28] = struct.pack("<I", 2**31)
    out.write_bytes(bytes(data))
    return out


def craft_deflate_bomb(good: Artifact, out: Path) -> Path:
    """A real entry that inflates to 11 MB from a few kilobytes."""
    return write_zip(out, [*entries_of(good), ("src/zeros.csv", b"\0" * (11 * 1024 * 1024))])


REFUSALS: dict[str, tuple[Callable[[Artifact, Path], Path], str]] = {
    "not_a_zip": (craft_not_a_zip, "bad.zip: not a zip file"),
    "truncated": (craft_truncated, "bad.zip: truncated zip"),
    "missing_manifest": (craft_missing_manifest, "bad.zip: no manifest.json"),
    "manifest_not_json": (craft_manifest_not_json, "bad.zip: invalid manifest: not valid JSON"),
    "manifest_bad_shape": (
        craft_manifest_bad_shape,
        "bad.zip: invalid manifest: 'objects' missing or not a list",
    ),
    "manifest_wrong_schema": (craft_manifest_wrong_schema, "schema_version 99 is not 1"),
    "manifest_unsafe_path": (
        craft_manifest_unsafe_workspace_path,
        "workspace_path '../escape' contains '..'",
    ),
    "manifest_redirected_path": (
        craft_manifest_redirected_workspace_path,
        "workspace_path 'ingest/load_orders' does not follow path",
    ),
    "hash_mismatch": (craft_hash_mismatch, "does not match its manifest sha256"),
    "size_mismatch": (craft_size_mismatch, "bytes, manifest says"),
    "extra_entry": (craft_extra_entry, "entry 'src/sneaky.py' is not in the manifest"),
    "missing_entry": (craft_missing_entry, "but the zip has no such entry"),
    "dotdot": (craft_dotdot, "entry 'src/../../evil.py' contains '..'"),
    "absolute": (craft_absolute, "entry '/etc/evil.py' is an absolute path"),
    "backslash": (craft_backslash, "entry 'src\\\\evil.py' contains a backslash"),
    "symlink": (craft_symlink, "entry 'src/link.py' is a symbolic link"),
    "duplicate": (craft_duplicate, "duplicate entry"),
    "encrypted": (craft_encrypted, "entry 'manifest.json' is encrypted"),
    "corrupt_deflate": (craft_corrupt_deflate, "bad.zip: corrupt zip"),
    "zip_bomb": (craft_zip_bomb, "declares 2147483648 bytes"),
    "deflate_bomb": (craft_deflate_bomb, "entry 'src/zeros.csv' declares 11534336 bytes"),
}


@pytest.mark.parametrize("scenario", sorted(REFUSALS))
def test_bad_artifact_is_refused_with_a_one_line_reason(
    scenario: str, good: Artifact, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    craft, expected = REFUSALS[scenario]
    bad = craft(good, tmp_path / "bad.zip")
    with pytest.raises(ArtifactError) as info:
        open_artifact(bad)
    assert expected in str(info.value)
    for command in ("verify", "inspect"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, str(bad)])
        out, err = capsys.readouterr()
        assert exit_info.value.code == 2
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("error: ")
        assert expected in err


def test_verify_is_open_artifact(good: Artifact) -> None:
    assert verify_artifact(good.path) == open_artifact(good.path) == good


def test_missing_artifact_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such artifact file"):
        open_artifact(tmp_path / "nope.zip")


def test_read_rechecks_the_hash(good: Artifact, tmp_path: Path) -> None:
    copy = tmp_path / "copy.zip"
    shutil.copy(good.path, copy)
    opened = open_artifact(copy)
    obj = opened.manifest.objects[0]
    craft_hash_mismatch(good, copy)  # altered after it was opened
    with pytest.raises(ArtifactError, match="altered after it was built"):
        opened.read(obj)
