"""`make demo` runs the whole promotion story on the emulator and exits 0 (issue 6)."""

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


@pytest.mark.slow
def test_demo_tells_the_whole_story_and_exits_0(tmp_path: Path) -> None:
    """Build, deploy, gate, promote, status, rollback, history, over a previous run's leftovers."""
    demo_dir = tmp_path / "demo"
    # What an earlier run leaves behind must not change the story.
    (demo_dir / "dist").mkdir(parents=True)
    (demo_dir / "dist" / "sales-analytics-9.9.9.zip").write_bytes(b"stale")
    (demo_dir / "workspace").mkdir()
    (demo_dir / "workspace" / "stale").write_text("stale")
    result = run_demo(demo_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    sections = re.findall(r"^=== (.+) ===$", out, flags=re.MULTILINE)
    assert sections[0] == "Start the workspace emulator" and sections[-1] == "Done"
    assert "deployed 1.0.0 to test and verified" in out
    assert "promoted 1.0.0 to prod and verified" in out
    assert "rolled prod back to 1.0.0 and verified" in out
    assert "deployed 1.1.0 to test and verified" in out
    assert "promoted 1.1.0 to prod and verified" in out
    assert "dry run: nothing was changed" in out
    assert "all environments run the same artifact" in out
    assert "(refused with exit 1, prod untouched)" in out
    # It ends with the nightly watch: both shared environments clean, the sandbox skipped.
    watch = out[out.index("$ dbx-promote status --check") :]
    assert "ok    test: runs 1.1.0, clean" in watch
    assert "ok    prod: runs 1.0.0, clean" in watch
    assert "check passed" in watch
    assert "error: 'prod' only takes what is verified in 'test'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    # The plan for v2 touches exactly the notebook that changed.
    assert "prod: 0 create, 1 update, 0 delete, 8 unchanged" in out
    # After the rollback prod runs v1 again, and history says so, newest first.
    after = out.split("=== Status of prod after the rollback ===")[1]
    assert re.search(r"version\s+1\.0\.0", after)
    assert "(rollback)" in after
    history = out.split("=== History of prod, newest first ===")[1]
    kinds = re.findall(r"^│ \S+\s+│ (\w+)\s", history, flags=re.MULTILINE)
    assert kinds == ["rollback", "promote", "promote"]
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
    ]
