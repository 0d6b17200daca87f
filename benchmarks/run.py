"""`make bench`: dbx-promote against the legacy databricks-cli, side by side, in one run.

Everything runs against the bundled workspace emulator with a per-request latency
(default 100 ms, like a round trip to Azure Databricks) and an import rate limit
(default 30 imports/s per workspace, the service's limit; excess imports get 429 with
Retry-After). Our tool runs as the `dbx-promote` CLI in a child process, exactly as a
pipeline runs it; wall time is measured around the child and peak memory is the child's
maximum RSS (``os.wait4``). Request counts are what the emulator saw.

Scenarios (issues 8 and 15): first deploy (in bulk, and with `--no-bulk`) / redeploy
unchanged / 1 and 25 changed of 500 notebooks in 10 folders, a release that adds one new
folder of 100 notebooks, the same with the legacy `databricks workspace import_dir -o`
into another folder of the same emulator, promote test -> prod (an empty Prod) across two
emulators and rollback, the build of 2,000 notebooks (benchmarks/bench_build.py) and
scaling at 100 / 500 / 2,000. Every row has its request count, its sequential round trips
(`sequential_round_trips` of the emulator's log) and the round trips of each phase
(benchmarks/phases.py).

    .venv/bin/python benchmarks/run.py [--latency-ms 100] [--rate-limit 30]
        [--quick] [--no-legacy] [--out benchmarks/RESULTS.md] [--workdir DIR]

``--quick`` is a smoke run on a tiny corpus (no build benchmark, no 2,000 scaling point).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from corpus import change_notebooks, make_corpus, write_config  # noqa: E402
from phases import phases  # noqa: E402

from dbx_promote.emulator import Emulator  # noqa: E402
from dbx_promote.emulator.control import sequential_round_trips  # noqa: E402

TOKEN = "dapi-benchmark-not-a-secret"


@dataclass
class Settings:
    latency_ms: float = 100.0
    rate_limit: float = 30.0
    notebooks: int = 500
    folders: int = 10
    changed: tuple[int, ...] = (1, 25)
    new_folder: int = 100
    scaling: tuple[int, ...] = (100, 500, 2000)
    build_bench: bool = True
    legacy: bool = True
    quick: bool = False
    workdir: Path = HERE / ".work" / "run"
    out: Path = HERE / "RESULTS.md"
    log: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        self.log.append(line)
        print(line, flush=True)


# --- running things -----------------------------------------------------------------------


def _dbx_command() -> list[str]:
    exe = Path(sys.executable).parent / "dbx-promote"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dbx_promote"]


def run_child(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; return wall seconds, the child's max RSS, exit code, stdout, stderr."""
    with tempfile.TemporaryDirectory(prefix="dbx-bench-") as tmp:
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        return {
            "seconds": seconds,
            "max_rss_mb": rss,
            "rc": proc.returncode,
            "stdout": out_path.read_text(errors="replace"),
            "stderr": err_path.read_text(errors="replace"),
        }


def tool_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(
        DATABRICKS_TOKEN=TOKEN,
        DATABRICKS_CONFIG_FILE="/nonexistent",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.pop("TF_BUILD", None)
    return env


IN_PROCESS = False  # --in-process: the smoke test's mode; its timings mean nothing


def _dbx_in_process(args: list[str]) -> dict[str, Any]:
    """Run the CLI in this process (no interpreter start-up); RSS is not measured."""
    from click.testing import CliRunner

    from dbx_promote.cli import cli

    env = tool_env()
    unset = {k: None for k in os.environ if k not in env}
    started = time.perf_counter()
    result = CliRunner().invoke(cli, args, env={**env, **unset}, catch_exceptions=False)
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise RuntimeError(
            f"dbx-promote {' '.join(args)} exited {result.exit_code}:\n{result.stderr}"
        )
    return {
        "seconds": seconds,
        "max_rss_mb": None,
        "rc": 0,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "json": json.loads(result.stdout),
    }


def dbx(args: list[str], cwd: Path) -> dict[str, Any]:
    """Run the dbx-promote CLI with ``--output json``; fail loudly on a non-zero exit."""
    if IN_PROCESS:
        return _dbx_in_process([*args, "--output", "json"])
    result = run_child([*_dbx_command(), *args, "--output", "json"], tool_env(), cwd)
    if result["rc"] != 0:
        raise RuntimeError(
            f"dbx-promote {' '.join(args)} exited {result['rc']}:\n{result['stderr'][-3000:]}"
        )
    result["json"] = json.loads(result["stdout"])
    return result


def busy_seconds(log: list[dict[str, Any]], latency_s: float) -> float:
    """Time with at least one request in flight: the union of [done - latency, done].

    With the emulator's fixed latency this is the time the client spent waiting on round
    trips; divided by the latency it is the number of round trips on the critical path.
    """
    spans = sorted((e["ts"] - latency_s, e["ts"]) for e in log)
    total, end = 0.0, float("-inf")
    for start, stop in spans:
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def _is_notebook(path: str | None) -> bool:
    return (
        bool(path) and "/.dbx-promote/" not in str(path) and not str(path).endswith("/_environment")
    )


def emulator_figures(emu: Emulator) -> dict[str, Any]:
    """Requests the emulator saw since its last counter reset, and the import-phase rate."""
    counters = emu.controls.counters()
    log = emu.controls.request_log()
    latency_s = emu.controls.latency_ms / 1000
    # Notebook imports only: not the lock, the stored release, `_environment` or the record.
    imports = [e for e in log if e["endpoint"] == "import" and _is_notebook(e["path"])]
    ok = [e for e in imports if e["status"] == 200]
    phase = (max(e["ts"] for e in ok) - min(e["ts"] for e in imports)) if len(ok) > 1 else 0.0
    return {
        "requests": counters["total"],
        "reads": counters["reads"],
        "writes": counters["writes"],
        "by_endpoint": counters["by_endpoint"],
        "throttled_429": counters["by_status"].get("429", 0),
        "network_busy_seconds": busy_seconds(log, latency_s),
        "imports_ok": len(ok),
        "imports_all": counters["by_endpoint"].get("import", 0),
        "import_phase_seconds": phase,
        # The first import is counted when it finishes, so n imports span n - 1 intervals.
        "import_phase_rate": (len(ok) - 1) / phase if phase > 0 else None,
    }


def measure_ours(emus: list[Emulator], args: list[str], cwd: Path) -> dict[str, Any]:
    for emu in emus:
        emu.controls.reset()
    result = dbx(args, cwd)
    figures = [emulator_figures(emu) for emu in emus]
    log = [e for emu in emus for e in emu.controls.request_log()]
    out = result["json"]
    changes = out.get("changes", {})
    row = {
        "seconds": result["seconds"],
        "max_rss_mb": result["max_rss_mb"],
        "requests": sum(f["requests"] for f in figures),
        "throttled_429": sum(f["throttled_429"] for f in figures),
        "imports_ok": sum(f["imports_ok"] for f in figures),
        "network_busy_seconds": sum(f["network_busy_seconds"] for f in figures),
        "tool_requests": out.get("requests"),
        "tool_retries": out.get("retries"),
        "tool_throttled": out.get("throttled"),
        "noop": out.get("noop"),
        "verified": out.get("verified"),
        "create": len(changes.get("create", [])),
        "update": len(changes.get("update", [])),
        "delete": len(changes.get("delete", [])),
        "unchanged": changes.get("unchanged"),
        "by_endpoint": [f["by_endpoint"] for f in figures],
        "import_phase_seconds": figures[-1]["import_phase_seconds"],
        "import_phase_rate": figures[-1]["import_phase_rate"],
        "round_trips": sequential_round_trips(log),
        "phases": phases(log),
        "bulk_imports": (out.get("bulk") or {}).get("imports", 0),
    }
    row["imports_per_s_wall"] = row["imports_ok"] / row["seconds"]
    return row


def measure_legacy(emu: Emulator, exe: Path, source: Path, target: str) -> dict[str, Any]:
    from legacy import import_dir

    emu.controls.reset()
    timing = import_dir(exe, source, target, emu.url)
    figures = emulator_figures(emu)
    return {
        "seconds": timing["seconds"],
        "max_rss_mb": timing["max_rss_mb"],
        "requests": figures["requests"],
        "throttled_429": figures["throttled_429"],
        "imports_ok": figures["imports_ok"],
        "network_busy_seconds": figures["network_busy_seconds"],
        "by_endpoint": [figures["by_endpoint"]],
        "imports_per_s_wall": figures["imports_ok"] / timing["seconds"],
        "import_phase_rate": figures["import_phase_rate"],
        "round_trips": sequential_round_trips(emu.controls.request_log()),
    }


def build(config: Path, out: Path, version: str, cwd: Path) -> dict[str, Any]:
    result = dbx(["--config", str(config), "build", "--out", str(out), "--version", version], cwd)
    return {
        "artifact": result["json"]["artifact"],
        "digest": result["json"]["digest"],
        "objects": result["json"]["objects"],
        "seconds": result["seconds"],
        "max_rss_mb": result["max_rss_mb"],
    }


# --- the scenarios ------------------------------------------------------------------------


def envs_for(test_url: str, prod_url: str | None, test_root: str, parallel: int = 8) -> dict:
    envs: dict[str, dict[str, object]] = {
        "test": {"host": test_url, "root": test_root, "parallel": parallel},
        # The same workspace, another folder: the first deploy once more, one by one.
        "single": {"host": test_url, "root": test_root + "-single", "parallel": parallel},
    }
    if prod_url is not None:
        envs["prod"] = {
            "host": prod_url,
            "root": "/Shared/bench/prod",
            "parallel": parallel,
            "requires": "test",
        }
    return envs


def run_all(s: Settings) -> dict[str, Any]:
    work = s.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    results: dict[str, Any] = {"settings": _settings_dict(s), "started": _now()}
    t0 = time.perf_counter()

    results["load_before"] = _loadavg()
    results["startup"] = None if s.quick else startup_seconds()
    legacy_exe: Path | None = None
    if s.legacy:
        from legacy import ensure_legacy

        s.say("installing the legacy databricks-cli into its own venv (first run only)")
        started = time.perf_counter()
        legacy_exe, legacy_version = ensure_legacy()
        results["legacy_version"] = legacy_version
        results["legacy_install_seconds"] = time.perf_counter() - started

    w1 = Emulator(
        state_dir=work / "ws-test", latency_ms=s.latency_ms, import_rate_limit=s.rate_limit
    ).start()
    w2 = Emulator(
        state_dir=work / "ws-prod",
        latency_ms=s.latency_ms,
        import_rate_limit=s.rate_limit,
        workspace_id="434343",
    ).start()
    try:
        results.update(_main_scenarios(s, work, w1, w2, legacy_exe))
        results["scaling"] = _scaling(s, work, w1)
    finally:
        w1.stop()
        w2.stop()
    if s.build_bench:
        s.say("build benchmark: 2,000 notebooks (benchmarks/bench_build.py, own process)")
        child = run_child(
            [sys.executable, str(HERE / "bench_build.py"), str(work / "build")],
            dict(os.environ),
            ROOT,
        )
        if child["rc"] != 0:
            raise RuntimeError(f"bench_build.py failed:\n{child['stderr'][-3000:]}")
        results["build_2000"] = json.loads(child["stdout"])
        results["build_2000"]["wall_seconds_incl_corpus"] = child["seconds"]
    results["load_after"] = _loadavg()
    results["total_seconds"] = time.perf_counter() - t0
    return results


def _main_scenarios(
    s: Settings, work: Path, w1: Emulator, w2: Emulator, legacy_exe: Path | None
) -> dict[str, Any]:
    n = s.notebooks
    s.say(f"corpus: {n} notebooks in {s.folders} folders, variants with {s.changed} changed")
    src = {"v1": work / "src-v1"}
    corpus_bytes = make_corpus(src["v1"], n, s.folders)
    previous = "v1"
    changed_paths = {}
    for k in s.changed:
        name = f"c{k}"
        src[name] = work / f"src-{name}"
        changed_paths[name] = change_notebooks(src[previous], src[name], k, tag=name)
        previous = name
    # The next release adds one new folder of `new_folder` notebooks.
    src["new"] = work / "src-new"
    shutil.copytree(src[previous], src["new"])
    make_corpus(work / "new-folder", s.new_folder, 1)
    shutil.copytree(work / "new-folder" / "area_00", src["new"] / "area_new")

    envs = envs_for(w1.url, w2.url, "/Shared/bench/test")
    cfg = {name: write_config(work / f"{name}.yml", path, envs) for name, path in src.items()}
    dist = work / "dist"
    s.say("building the artifacts with `dbx-promote build`")
    arts = {"v1": build(cfg["v1"], dist, "1.0.0", work)}
    arts["v1-rebuild"] = build(cfg["v1"], dist, "1.0.1", work)
    for i, k in enumerate(s.changed):
        arts[f"c{k}"] = build(cfg[f"c{k}"], dist, f"1.{i + 1}.0", work)
    arts["new"] = build(cfg["new"], dist, f"1.{len(s.changed) + 1}.0", work)

    def deploy(name: str, *extra: str, env: str = "test") -> dict[str, Any]:
        return measure_ours(
            [w1],
            ["--config", str(cfg["v1"]), "deploy", arts[name]["artifact"], "--env", env, *extra],
            work,
        )

    ours: dict[str, Any] = {}
    s.say("ours: first deploy")
    ours["first"] = deploy("v1")
    s.say("ours: first deploy with --no-bulk (one import per notebook), into another folder")
    ours["first_no_bulk"] = deploy("v1", "--no-bulk", env="single")
    s.say("ours: redeploy unchanged (the same artifact again)")
    ours["unchanged"] = deploy("v1")
    s.say("ours: redeploy unchanged (a new build of the same notebooks)")
    ours["unchanged_rebuild"] = deploy("v1-rebuild")
    for k in s.changed:
        s.say(f"ours: redeploy with {k} changed")
        ours[f"changed_{k}"] = deploy(f"c{k}")
    s.say(f"ours: a release with one new folder of {s.new_folder} notebooks")
    ours["new_folder"] = deploy("new")
    s.say("setup: the last changed release back in test (for the promote flows)")
    ours["setup_back"] = deploy(f"c{s.changed[-1]}")

    legacy: dict[str, Any] = {}
    if legacy_exe is not None:
        target = "/Shared/bench/legacy"
        s.say("legacy: first import_dir")
        legacy["first"] = measure_legacy(w1, legacy_exe, src["v1"], target)
        s.say("legacy: import_dir unchanged")
        legacy["unchanged"] = measure_legacy(w1, legacy_exe, src["v1"], target)
        for k in s.changed:
            s.say(f"legacy: import_dir with {k} changed")
            legacy[f"changed_{k}"] = measure_legacy(w1, legacy_exe, src[f"c{k}"], target)
        s.say(f"legacy: import_dir with a new folder of {s.new_folder} notebooks")
        legacy["new_folder"] = measure_legacy(w1, legacy_exe, src["new"], target)

    # Promote: test holds the last changed release (verified). Promote it into an empty
    # Prod on the second workspace; put v1 back in test and promote that (an update of the
    # changed notebooks); then roll Prod back to the release before.
    promote_args = ["--config", str(cfg["v1"]), "promote", "--from", "test", "--to", "prod"]
    promote_args.append("--yes")
    flows: dict[str, Any] = {}
    s.say("promote test -> prod (empty prod, second workspace)")
    flows["promote_first"] = measure_ours([w1, w2], promote_args, work)
    s.say("setup: deploy v1 to test again")
    flows["setup_deploy_v1"] = deploy("v1")
    s.say("promote test -> prod (changed notebooks only)")
    flows["promote_update"] = measure_ours([w1, w2], promote_args, work)
    s.say("rollback prod")
    flows["rollback"] = measure_ours(
        [w2], ["--config", str(cfg["v1"]), "rollback", "--env", "prod"], work
    )
    return {
        "corpus": {"notebooks": n, "folders": s.folders, "bytes": corpus_bytes},
        "builds": arts,
        "ours": ours,
        "legacy": legacy,
        "flows": flows,
    }


def _scaling(s: Settings, work: Path, w1: Emulator) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for n in s.scaling:
        s.say(f"scaling: {n} notebooks")
        source = work / f"scale-{n}"
        make_corpus(source, n, s.folders)
        cfg = write_config(
            work / f"scale-{n}.yml", source, envs_for(w1.url, None, f"/Shared/bench/scale-{n}")
        )
        first = build(cfg, work / "dist-scale", f"{n}.0.0", work)
        rebuild = build(cfg, work / "dist-scale", f"{n}.0.1", work)
        deploy = ["--config", str(cfg), "deploy"]
        rows[str(n)] = {
            "build_seconds": first["seconds"],
            "first": measure_ours([w1], [*deploy, first["artifact"], "--env", "test"], work),
            "unchanged": measure_ours([w1], [*deploy, first["artifact"], "--env", "test"], work),
            "unchanged_rebuild": measure_ours(
                [w1], [*deploy, rebuild["artifact"], "--env", "test"], work
            ),
        }
    return rows


# --- facts about the machine -------------------------------------------------------------


def startup_seconds(runs: int = 3) -> dict[str, float]:
    """The CLI's fixed cost: a child that only imports what `deploy` imports (best of n)."""
    code = "import dbx_promote.cli, dbx_promote.operations, dbx_promote.workspace"
    sdk: list[float] = []
    full: list[float] = []
    for _ in range(runs):
        full.append(run_child([sys.executable, "-c", code], dict(os.environ), ROOT)["seconds"])
        sdk.append(
            run_child([sys.executable, "-c", "import databricks.sdk"], dict(os.environ), ROOT)[
                "seconds"
            ]
        )
    return {"cli_imports": min(full), "databricks_sdk_import": min(sdk)}


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _settings_dict(s: Settings) -> dict[str, Any]:
    return {
        "latency_ms": s.latency_ms,
        "rate_limit": s.rate_limit,
        "notebooks": s.notebooks,
        "changed": list(s.changed),
        "new_folder": s.new_folder,
        "scaling": list(s.scaling),
        "quick": s.quick,
        "in_process": IN_PROCESS,
    }


def _memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "dbx_promote": _version("dbx-promote"),
        "databricks_sdk": _version("databricks-sdk"),
        "commit": commit or "unknown",
    }


# --- the report -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--rate-limit", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--no-legacy", action="store_true", help="skip the legacy baseline")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--workdir", type=Path, default=HERE / ".work" / "run")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run our CLI inside this process (smoke test only: no start-up, no RSS)",
    )
    args = parser.parse_args(argv)
    global IN_PROCESS
    IN_PROCESS = args.in_process

    s = Settings(
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        legacy=not args.no_legacy,
        quick=args.quick,
        workdir=args.workdir,
        out=args.out,
    )
    if args.quick:
        s.notebooks, s.folders, s.changed, s.scaling = 12, 3, (1, 3), (6,)
        s.new_folder = 4
        s.build_bench = False
    from report import render

    results = run_all(s)
    results["machine"] = machine()
    results["finished"] = _now()
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(render(results))
    raw = s.workdir / "results.json"
    raw.write_text(json.dumps(results, indent=2, default=str))
    s.say(f"wrote {s.out} (raw figures: {raw}) in {results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
