"""Generated hostile input (issue 13): configs, manifests and records with bad paths,
names, numbers and encodings.

Whatever is generated, the real CLI exits 2 with one line on stderr, no traceback, never
"internal error", and the workspace sees no write (the emulator's request log). The
examples are derandomized and bounded, so CI runs the same few hundred cases every time.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbx_promote.artifact import MANIFEST_NAME, Artifact
from dbx_promote.emulator import Emulator

from cli_helpers import run_cli
from deploy_helpers import ROOT, V1, V2, build, deploy

RECORD = f"{ROOT}/.dbx-promote/deployment.json"

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_refused(result: Any, emu: Emulator | None = None, since: int = 0) -> None:
    """Exit 2, one `error:` line, no traceback, not an internal error, nothing written."""
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "internal error" not in text, text
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if emu is not None:
        assert [r for r in emu.request_log()[since:] if r["method"] != "GET"] == []


# --- the building blocks of hostile values --------------------------------------------------

#: Characters no path may hold: C0, DEL and C1 controls, bidi overrides, zero-width ones.
HIDDEN = ["a\x00b", "a\nb", "\x1b[31m", "a\x7fb", "a\x85b", "\u202egpj.py", "\u200b"]
#: Segments that make any path unusable: traversal, empty, hidden characters, backslashes.
BAD_SEGMENTS = st.sampled_from(["..", ".", "", "a\\b", "\x7f/..", *HIDDEN])
#: Segments no root may hold (an empty one is only collapsed, a backslash is a name).
BAD_ROOT_SEGMENTS = st.sampled_from(["..", ".", *HIDDEN])
SEGMENTS = st.text(
    st.characters(codec="utf-8", exclude_characters="/"), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))


@st.composite
def bad_relative_paths(draw: st.DrawFn, drive: bool = True) -> str:
    """A relative path with at least one bad segment somewhere, or an absolute one (also
    a Windows drive's, with ``drive``: an artifact is extracted on a build agent)."""
    parts = draw(st.lists(SEGMENTS, max_size=3))
    parts.insert(draw(st.integers(0, len(parts))), draw(BAD_SEGMENTS))
    path = "/".join(parts)
    return draw(st.sampled_from([path, "/" + path, *(["C:" + path] if drive else [])]))


WRONG_TYPES = st.one_of(
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
HUGE_NUMBERS = st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), st.just(10**1000))


# --- configs ----------------------------------------------------------------------------------


@st.composite
def bad_roots(draw: st.DrawFn) -> Any:
    return draw(
        st.one_of(
            st.tuples(st.lists(SEGMENTS, max_size=2), BAD_ROOT_SEGMENTS).map(
                lambda t: "/Shared/" + "/".join([*t[0], t[1]])
            ),
            SEGMENTS.map(lambda s: s.lstrip("/") or "x"),  # not absolute
            st.sampled_from(["/", "/Shared", "/Users", "/Repos/x/y", "/Workspace", "/Users/a"]),
            WRONG_TYPES.filter(lambda v: not isinstance(v, str)),
        )
    )


BAD_NAMES = st.one_of(
    st.text(max_size=20).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", s)),
    bad_relative_paths(),
    WRONG_TYPES,
)

#: One field of the sample config and the hostile values it may take (each one bad).
CONFIG_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "project": BAD_NAMES,
    "environments.test.root": bad_roots(),
    "environments.test.keep_releases": st.one_of(
        HUGE_NUMBERS, st.integers(1001, 10**23), WRONG_TYPES
    ),
    "environments.test.parallel": st.one_of(
        st.integers(max_value=0), st.integers(65, 10**8), st.text(max_size=3)
    ),
    "environments.test.import_rate": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: not 0 <= f < math.inf),
        st.floats(min_value=1e-300, max_value=0.009),  # an interval that overflows the pacer
        st.floats(min_value=10_001, allow_infinity=False),
        st.text(max_size=3),
    ),
    "environments.test.parameters": st.one_of(
        st.lists(st.integers(), min_size=1, max_size=2), st.text(min_size=1)
    ),
    "environments.test.requires": st.text(min_size=1, max_size=8).filter(lambda s: s.strip()),
    "environments": st.one_of(st.lists(st.text(max_size=3), max_size=2), st.text(max_size=3)),
}


def sample_config() -> dict[str, Any]:
    return {"project": "app", "source": "src", "environments": {"test": {"root": ROOT}}}


def set_field(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[last] = value


@st.composite
def hostile_configs(draw: st.DrawFn) -> bytes:
    """The sample config with one field hostile, as UTF-8 YAML, or bytes that are not."""
    doc = sample_config()
    field = draw(st.sampled_from(sorted(CONFIG_FIELDS)))
    set_field(doc, field, draw(CONFIG_FIELDS[field]))
    text = yaml.safe_dump(doc, allow_unicode=True).encode()
    encoding = draw(st.sampled_from(["utf-8", "latin-1 byte", "utf-16"]))
    if encoding == "latin-1 byte":
        return b"project: caf\xe9\n" + text  # not UTF-8
    if encoding == "utf-16":
        return yaml.safe_dump(sample_config()).encode("utf-16")
    return text


@given(raw=hostile_configs())
@SETTINGS
def test_a_hostile_config_is_one_line_exit_2_and_no_write(
    raw: bytes, emulator: Emulator, tmp_path: Path, built: Artifact
) -> None:
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_bytes(raw)
    start = len(emulator.request_log())

    result = run_cli(cfg, "deploy", str(built.path), "--env", "test", host=emulator.url)

    assert_refused(result, emulator, start)


# --- manifests --------------------------------------------------------------------------------


MANIFEST_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "project": BAD_NAMES,
    "version": st.one_of(bad_relative_paths(), WRONG_TYPES, st.text(min_size=201, max_size=300)),
    "commit": st.one_of(bad_relative_paths(), WRONG_TYPES.filter(lambda v: v is not None)),
    "commit_time": st.one_of(bad_relative_paths(), st.text(max_size=10).filter(lambda s: s)),
    "tool_version": st.one_of(bad_relative_paths(), WRONG_TYPES),
    "schema_version": st.one_of(HUGE_NUMBERS, WRONG_TYPES, st.text(max_size=3)),
    "objects.0.path": st.one_of(bad_relative_paths(), WRONG_TYPES),
    "objects.0.workspace_path": st.one_of(bad_relative_paths(), WRONG_TYPES),
    "objects.0.size": st.one_of(HUGE_NUMBERS, WRONG_TYPES),
    "objects.0.sha256": st.one_of(st.text(max_size=70), WRONG_TYPES),
    "objects.0.kind": st.one_of(st.text(max_size=8), WRONG_TYPES).filter(
        lambda v: v not in ("notebook", "file")
    ),
    "objects": st.one_of(st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=2)),
}


def set_in(doc: Any, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@st.composite
def hostile_manifests(draw: st.DrawFn, good: dict[str, Any]) -> bytes:
    """``good`` with one field hostile; or JSON the parser alone would choke on."""
    shape = draw(st.sampled_from(["field", "field", "field", "nested", "not utf-8", "nan"]))
    if shape == "nested":
        depth = draw(st.integers(2_000, 50_000))
        return b"[" * depth + b"]" * depth
    if shape == "not utf-8":
        return b'{"project": "caf\xe9"}'
    if shape == "nan":
        return json.dumps({**good, "schema_version": float("nan")}).encode()
    doc = json.loads(json.dumps(good))
    field = draw(st.sampled_from(sorted(MANIFEST_FIELDS)))
    set_in(doc, field, draw(MANIFEST_FIELDS[field]))
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


def with_manifest(artifact: Artifact, out: Path, manifest: bytes) -> Path:
    with zipfile.ZipFile(artifact.path) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in entries:
            zf.writestr(name, manifest if name == MANIFEST_NAME else body)
    return out


@pytest.fixture
def built(tmp_path: Path) -> Artifact:
    return build(tmp_path, V2, "2.0.0")


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "dbx-promote.yml"
    path.write_text(yaml.safe_dump(sample_config()))
    return path


@pytest.fixture
def deployed(emulator: Emulator, fake_clock: Any, tmp_path: Path) -> Emulator:
    """ROOT holding release 1.0.0, so hostile input meets a real folder."""
    deploy(emulator, fake_clock, build(tmp_path, V1, "1.0.0"))
    return emulator


@given(data=st.data())
@SETTINGS
def test_a_hostile_manifest_is_refused_by_verify_and_deploy_before_any_write(
    data: st.DataObject, deployed: Emulator, tmp_path: Path, built: Artifact, cfg: Path
) -> None:
    manifest = data.draw(hostile_manifests(built.manifest.to_dict()))
    bad = with_manifest(built, tmp_path / "bad.zip", manifest)
    start = len(deployed.request_log())

    assert_refused(run_cli(cfg, "verify", str(bad), host=None))
    assert_refused(
        run_cli(cfg, "deploy", str(bad), "--env", "test", host=deployed.url), deployed, start
    )


# --- records ----------------------------------------------------------------------------------

RECORD_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "releases.0.parts": st.one_of(HUGE_NUMBERS, st.integers(1025, 10**12), WRONG_TYPES),
    "releases.0.file": bad_relative_paths(drive=False).map(lambda p: ".dbx-promote/releases/" + p),
    "releases.0.digest": st.one_of(st.text(max_size=80), WRONG_TYPES),
    "objects.etl/ingest.object_id": st.one_of(HUGE_NUMBERS, WRONG_TYPES),
    "objects.etl/ingest.modified_at": st.one_of(HUGE_NUMBERS, WRONG_TYPES),
    "objects.etl/ingest.sha256": st.one_of(st.text(max_size=70), WRONG_TYPES),
    "digest": st.one_of(bad_relative_paths(), WRONG_TYPES),
    "verified": st.one_of(st.text(max_size=5), st.integers(), st.none()),
    "directories": st.lists(bad_relative_paths(drive=False), min_size=1, max_size=2),
    "project": st.one_of(WRONG_TYPES, st.text(min_size=4097, max_size=4100)),
    "env": st.one_of(WRONG_TYPES, st.none()),
    "objects": st.one_of(st.text(max_size=3), st.lists(st.integers(), max_size=2)),
}


@pytest.fixture
def good_record(deployed: Emulator) -> dict[str, Any]:
    """The record of ROOT as the deploy wrote it (read once: the examples replace it)."""
    data: dict[str, Any] = json.loads(deployed.read(RECORD))
    return data


@st.composite
def hostile_records(draw: st.DrawFn, good: dict[str, Any]) -> bytes:
    """``good`` with one field hostile, an object at an unsafe path, or bad JSON."""
    shape = draw(st.sampled_from(["field", "field", "field", "path", "nested", "encoding"]))
    if shape == "nested":
        depth = draw(st.integers(2_000, 50_000))
        return b'{"objects": ' + b"[" * depth + b"]" * depth + b"}"
    if shape == "encoding":
        return draw(st.sampled_from([b"\xff\xfe{\x00}\x00", json.dumps(good).encode("utf-16")]))
    doc = json.loads(json.dumps(good))
    if shape == "path":
        doc["objects"][draw(bad_relative_paths(drive=False))] = doc["objects"]["etl/ingest"]
    else:
        field = draw(st.sampled_from(sorted(RECORD_FIELDS)))
        set_in(doc, field, draw(RECORD_FIELDS[field]))
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@given(data=st.data())
@SETTINGS
def test_a_hostile_record_is_one_line_exit_2_and_no_write(
    data: st.DataObject, deployed: Emulator, good_record: dict[str, Any], built: Artifact, cfg: Path
) -> None:
    raw = data.draw(hostile_records(good_record))
    deployed.hand_edit(RECORD, raw)
    start = len(deployed.request_log())

    for args in (("deploy", str(built.path), "--env", "test"), ("status", "--env", "test")):
        assert_refused(run_cli(cfg, *args, host=deployed.url), deployed, start)
