"""`make demo` runs the three promotion stories on the emulator and exits 0 (issues 6, 12)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "demo.sh"


def run_demo(demo_dir: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DBX_PROMOTE_DEMO_DIR": str(demo_dir),
    }
    env.pop("COLUMNS", None)
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        # Generous: the demo runs a dozen CLI processes, and a loaded 2-core machine (several
        # suites at once) took over 120 s. The bound only stops a hung demo.
        timeout=600,
    )


def status_section(out: str) -> str:
    return out.split("=== Status of every environment ===")[1].split("=== History")[0]


@pytest.mark.slow
def test_demo_tells_the_three_stories_and_exits_0(tmp_path: Path) -> None:
    """v1 tested and promoted; v2 fails in test and prod refuses it; v3 fails prod's smoke
    test and prod rolls back by itself — over a previous run's leftovers."""
    demo_dir = tmp_path / "demo"
    # What an earlier run leaves behind must not change the story.
    (demo_dir / "dist").mkdir(parents=True)
    (demo_dir / "dist" / "sales-analytics-9.9.9.zip").write_bytes(b"stale")
    (demo_dir / "workspace").mkdir()
    (demo_dir / "workspace" / "stale").write_text("stale")
    result = run_demo(demo_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    out, err = result.stdout, result.stderr
    sections = re.findall(r"^=== (.+) ===$", out, flags=re.MULTILINE)
    assert sections[0] == "Start the workspace emulator" and sections[-1] == "Done"
    assert "Traceback" not in out + err

    # Story 1: v1's tests really ran in test (three notebooks), then prod's smoke test.
    assert "deployed 1.0.0 to test and verified" in out
    assert "test (1.0.0): 3 of 3 tests passed" in out
    assert "promoted 1.0.0 to prod and verified" in out
    assert "prod (1.0.0): 1 of 1 test passed" in out

    # Prod's permissions: the reader's token exports and is refused a write; an admin's
    # hand grant on a prod notebook is reported by status, removed by the next deploy.
    people = out.split("=== Prod's permissions are code")[1].split("=== Story 2")[0]
    assert "reader@example.com exported " in people
    assert "refused (PERMISSION_DENIED): User reader@example.com does not have Edit" in people
    assert "grant drift ingest/load_orders: user admin@example.com: CAN_EDIT" in people
    assert "dapi-demo" not in out + err  # the demo's tokens never show
    promote_v3 = out.split("=== Promote v3 to prod")[1].split("=== Status")[0]
    assert "ingest/load_orders: user admin@example.com: CAN_EDIT (removed)" in promote_v3
    assert "permissions as configured" in status_section(out)

    # Story 2: v2's helper test fails in test; prod refuses v2.
    assert (
        "error: deployed 1.1.0 to test; 1 of 3 tests failed: tests/test_helpers "
        "(AssertionError: 100 USD should be 92.0 EUR, got 920.0)"
    ) in err
    assert "error: 'prod' only takes what passed its tests in 'test': 1.1.0 did not" in err
    assert (demo_dir / "TEST-dbx-test.xml").read_text().count("<failure") == 1

    # Story 3: v3 passes in test, fails prod's smoke test, prod rolls back to 1.0.0.
    assert "test (1.2.0): 3 of 3 tests passed" in out
    assert (
        "error: smoke tests failed in prod: tests/smoke_prod (AssertionError: prod lacks "
        "settings this release needs: orders_table); rolled back to 1.0.0"
    ) in err
    assert out.count("(exit 1, as it should)") == 3

    status = status_section(out)
    assert re.search(r"version\s+1\.2\.0", status) and re.search(r"version\s+1\.0\.0", status)
    assert "tests    passed at" in status
    # It ends with the nightly watch: both shared environments clean, the sandbox skipped.
    watch = out[out.index("$ dbx-promote status --check") :]
    assert "ok    test: runs 1.2.0, clean" in watch
    assert "ok    prod: runs 1.0.0, clean" in watch
    assert "check passed" in watch
    history = out.split("=== History of prod, newest first ===")[1]
    kinds = re.findall(r"^│ \S+\s+│ (\w+)\s+│ (\S+)", history, flags=re.MULTILINE)
    assert kinds == [
        ("test", "1.0.0"),  # the restored release's smoke tests, run again
        ("rollback", "1.0.0"),
        ("test", "1.2.0"),
        ("promote", "1.2.0"),
        ("test", "1.0.0"),
        ("promote", "1.0.0"),
    ]
    # The emulator was stopped: its port no longer answers.
    url = re.search(r"emulator at (http://\S+)", out)
    assert url
    port = int(url.group(1).rsplit(":", 1)[1])
    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert (demo_dir / "workspace").is_dir()
    assert sorted(p.name for p in (demo_dir / "dist").iterdir()) == [
        "sales-analytics-1.0.0.zip",
        "sales-analytics-1.1.0.zip",
        "sales-analytics-1.2.0.zip",
    ]
