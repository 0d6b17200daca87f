"""Render the figures of `run.py` as benchmarks/RESULTS.md (goals, tables, what bounds them)."""

from __future__ import annotations

from typing import Any

FIRST_GOAL = 3.0  # first deploy at least 3x faster than the legacy CLI
REDEPLOY_GOAL = 50.0  # redeploys at least 50x faster
RATE_GOAL = 0.9  # achieved imports/s at least 0.9 of the rate limit


def _s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f} s" if x < 10 else f"{x:.1f} s")


def _n(x: Any) -> str:
    return "-" if x is None else str(x)


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} MB"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def _speedup(ours: dict[str, Any] | None, legacy: dict[str, Any] | None) -> float | None:
    if not ours or not legacy:
        return None
    return legacy["seconds"] / ours["seconds"]


def _ratio(ours: dict[str, Any] | None, legacy: dict[str, Any] | None) -> float | None:
    if not ours or not legacy:
        return None
    return ours["seconds"] / legacy["seconds"]


def _other(row: dict[str, Any]) -> float:
    return max(0.0, row["seconds"] - row["network_busy_seconds"])


def render(r: dict[str, Any]) -> str:
    st, m = r["settings"], r["machine"]
    ours, legacy, flows = r["ours"], r.get("legacy") or {}, r["flows"]
    lat, limit = st["latency_ms"], st["rate_limit"]
    n = r["corpus"]["notebooks"]
    changed = st["changed"]
    first = ours["first"]
    rate = first["import_phase_rate"]
    frac = rate / limit if rate and limit else None
    frac_wall = first["imports_per_s_wall"] / limit if limit else None

    goals: list[tuple[str, str, str, bool | None]] = []
    goals.append(
        (
            f"First deploy: imports/s >= {RATE_GOAL} x limit",
            f">= {RATE_GOAL * limit:.0f}/s",
            f"{rate:.1f}/s = {frac:.2f} x limit during the import phase; "
            f"{first['imports_per_s_wall']:.1f}/s = {frac_wall:.2f} x over the whole run"
            if rate and frac is not None and frac_wall is not None
            else "-",
            None if frac is None else frac >= RATE_GOAL,
        )
    )
    sp = _speedup(first, legacy.get("first"))
    goals.append(
        (
            "First deploy vs legacy",
            f">= {FIRST_GOAL:.0f}x faster",
            _x(sp),
            None if sp is None else sp >= FIRST_GOAL,
        )
    )
    redeploys = [("unchanged", "unchanged", "unchanged (same artifact)")]
    redeploys.append(("unchanged_rebuild", "unchanged", "unchanged (new build, same notebooks)"))
    redeploys += [(f"changed_{k}", f"changed_{k}", f"{k} changed") for k in changed]
    for key, lkey, label in redeploys:
        sp = _speedup(ours.get(key), legacy.get(lkey))
        goals.append(
            (
                f"Redeploy {label} vs legacy",
                f">= {REDEPLOY_GOAL:.0f}x faster",
                _x(sp),
                None if sp is None else sp >= REDEPLOY_GOAL,
            )
        )

    out: list[str] = []
    w = out.append
    w("# Benchmark results")
    w("")
    w(
        f"Written by `make bench` (`benchmarks/run.py`) on {r['finished']}; the whole run took "
        f"{r['total_seconds'] / 60:.1f} min. Every figure below comes from that one run."
    )
    if st["quick"]:
        w("")
        w("**This is a `--quick` smoke run on a tiny corpus: the figures mean nothing.**")
    if st.get("in_process"):
        w("")
        w("**`--in-process`: our CLI ran inside the harness (no start-up, no RSS).**")
    w("")
    w("## Conditions")
    w("")
    w(
        f"- Workspace: the bundled emulator, **{lat:.0f} ms latency per request**, "
        f"**import rate limit {limit:.0f}/s** per workspace (token bucket; excess imports get "
        "429 with Retry-After), state in SQLite. Two emulator instances act as the Test and "
        "Prod workspaces."
    )
    w(
        f"- Corpus: {n} Databricks source notebooks (4/5 Python, 1/5 SQL) in "
        f"{r['corpus']['folders']} folders, {r['corpus']['bytes'] / 1e6:.1f} MB "
        f"(~{r['corpus']['bytes'] / max(n, 1) / 1000:.0f} KB each), generated "
        "deterministically (`benchmarks/corpus.py`); variants with "
        + " and ".join(str(k) for k in changed)
        + " changed notebooks."
    )
    w(
        "- Ours: the `dbx-promote` CLI in a child process, as a pipeline runs it "
        "(`deploy ARTIFACT --env test --output json`, parallel 8). Wall time is measured "
        "around the child, so it includes interpreter start-up and imports; peak memory is "
        "the child's maximum RSS (`os.wait4`). Requests are what the emulator counted."
    )
    w(
        f"- Legacy: `databricks-cli {r.get('legacy_version', '-')}` (PyPI, own venv under "
        "`benchmarks/.work/legacy-venv`), `databricks workspace import_dir -o SRC "
        "/Shared/bench/legacy` into the same emulator. It drops the port from its host, so it "
        "reaches the emulator through `HTTP_PROXY` (one hop per request, as without a proxy)."
    )
    w(
        "- *Network busy* = time with at least one request in flight (union of each "
        "request's latency window); wall minus that is start-up and local work."
    )
    w("")
    w("## Machine and versions")
    w("")
    mem = f"{m['memory_gb']:.1f} GB" if m.get("memory_gb") else "unknown"
    w(f"- Platform: {m['platform']}; CPU: {m['cpu']}, {m['cpus']} cores; memory {mem}")
    w(
        f"- Python {m['python']}; dbx-promote {m['dbx_promote']} (commit {m['commit']}); "
        f"databricks-sdk {m['databricks_sdk']}; legacy databricks-cli "
        f"{r.get('legacy_version', 'not run')}"
    )
    load_b, load_a = r.get("load_before"), r.get("load_after")
    if load_b or load_a:
        w(
            f"- Load average (1/5/15 min) before the run {load_b}, after {load_a}: the machine "
            f"has {m['cpus']} cores and may be shared, so wall times carry that noise."
        )
    up = r.get("startup")
    if up:
        w(
            f"- Fixed start-up cost of our CLI (a child that only imports what `deploy` "
            f"imports, best of 3): {_s(up['cli_imports'])}, of which `import databricks.sdk` "
            f"alone is {_s(up['databricks_sdk_import'])}."
        )
    w("")
    w("## Goals")
    w("")
    w("| goal | target | achieved | verdict |")
    w("|---|---|---|---|")
    for name, target, got, ok in goals:
        w(f"| {name} | {target} | {got} | {_verdict(ok)} |")
    w("")

    w(f"## 1-3. Deploys of {n} notebooks: ours and legacy")
    w("")
    w(
        "| scenario | ours wall | ours requests | network busy | legacy wall | legacy requests "
        "| ours / legacy | speed-up |"
    )
    w("|---|---|---|---|---|---|---|---|")
    rows = [("first", "first", "first deploy"), *redeploys]
    for key, lkey, label in rows:
        o, lg = ours.get(key), legacy.get(lkey)
        if o is None:
            continue
        w(
            f"| {label} | {_s(o['seconds'])} | {o['requests']} | {_s(o['network_busy_seconds'])} "
            f"| {_s(lg['seconds']) if lg else '-'} | {lg['requests'] if lg else '-'} "
            f"| {_ratio(o, lg) or 0:.3f} | {_x(_speedup(o, lg))} |"
            if lg
            else f"| {label} | {_s(o['seconds'])} | {o['requests']} "
            f"| {_s(o['network_busy_seconds'])} | - | - | - | - |"
        )
    w("")
    w("Details of our runs:")
    w("")
    w(
        "| scenario | create / update / unchanged | imports ok | 429s seen | retries "
        "| import-phase rate | peak RSS |"
    )
    w("|---|---|---|---|---|---|---|")
    for key, _, label in rows:
        o = ours.get(key)
        if o is None:
            continue
        ipr = o["import_phase_rate"]
        w(
            f"| {label} | {o['create']} / {o['update']} / {_n(o['unchanged'])} "
            f"| {o['imports_ok']} | {o['throttled_429']} | {_n(o['tool_retries'])} "
            f"| {f'{ipr:.1f}/s' if ipr else '-'} | {_mb(o['max_rss_mb'])} |"
        )
    if legacy:
        lf = legacy["first"]
        w("")
        w(
            f"Legacy first run: {lf['imports_ok']} imports, {lf['requests']} requests, "
            f"{lf['imports_per_s_wall']:.1f} imports/s, {lf['throttled_429']} 429s, "
            f"peak RSS {_mb(lf['max_rss_mb'])}. It re-uploads all {n} notebooks on every run "
            "and never deletes."
        )
    w("")

    w("## 4. Promote (Test -> Prod, two workspaces) and rollback")
    w("")
    w("| step | wall | requests | create / update / delete / unchanged | 429s | peak RSS |")
    w("|---|---|---|---|---|---|")
    labels = {
        "promote_first": f"promote the {n}-notebook release into an empty Prod",
        "promote_update": "promote the next release (only the changed notebooks)",
        "rollback": "rollback Prod to the previous release",
    }
    for key, label in labels.items():
        f = flows[key]
        w(
            f"| {label} | {_s(f['seconds'])} | {f['requests']} "
            f"| {f['create']} / {f['update']} / {f['delete']} / {_n(f['unchanged'])} "
            f"| {f['throttled_429']} | {_mb(f['max_rss_mb'])} |"
        )
    w("")
    w(
        "Promote reads the release stored in Test's `.dbx-promote/releases/` and checks its "
        "digest, then deploys the same bytes to Prod; requests are counted on both workspaces."
    )
    w("")

    w("## 5. Build")
    w("")
    b = r.get("build_2000")
    if b:
        w(
            f"`benchmarks/bench_build.py` (in its own process): {b['notebooks']} notebooks, "
            f"{b['input_mb']} MB in, artifact {b['artifact_mb']} MB."
        )
        w("")
        w("| build wall | build peak (Python heap) | verify wall | verify peak | max RSS |")
        w("|---|---|---|---|---|")
        w(
            f"| {_s(b['build_seconds'])} | {b['build_peak_python_mb']} MB "
            f"| {_s(b['verify_seconds'])} | {b['verify_peak_python_mb']} MB "
            f"| {b['max_rss_mb']} MB |"
        )
    else:
        w("Skipped (`--quick`).")
    builds = r["builds"]
    w("")
    w(
        f"`dbx-promote build` of the {n}-notebook corpus, CLI wall time including start-up: "
        + ", ".join(f"{_s(v['seconds'])} ({k})" for k, v in builds.items())
        + "."
    )
    w("")

    w("## 6. Scaling")
    w("")
    w(
        "| notebooks | first deploy | per notebook | requests | no-op (same artifact) "
        "| requests | no-op (new build) | requests | per unchanged notebook |"
    )
    w("|---|---|---|---|---|---|---|---|---|")
    for size, row in r["scaling"].items():
        k = int(size)
        fst, nop, reb = row["first"], row["unchanged"], row["unchanged_rebuild"]
        w(
            f"| {k} | {_s(fst['seconds'])} | {fst['seconds'] / k * 1000:.0f} ms "
            f"| {fst['requests']} | {_s(nop['seconds'])} | {nop['requests']} "
            f"| {_s(reb['seconds'])} | {reb['requests']} "
            f"| {reb['seconds'] / k * 1000:.1f} ms |"
        )
    w("")
    w(_scaling_comment(r["scaling"], limit))
    w("")

    w("## What bounds each figure")
    w("")
    for line in _bounds(r):
        w(f"- {line}")
    w("")
    out.extend(engine_section())
    return "\n".join(out)


def _scaling_comment(scaling: dict[str, Any], limit: float) -> str:
    sizes = sorted(int(k) for k in scaling)
    if len(sizes) < 2:
        return ""
    lo, hi = str(sizes[0]), str(sizes[-1])
    f_lo, f_hi = scaling[lo]["first"]["seconds"], scaling[hi]["first"]["seconds"]
    r_lo = scaling[lo]["unchanged_rebuild"]["seconds"]
    r_hi = scaling[hi]["unchanged_rebuild"]["seconds"]
    slope = (f_hi - f_lo) / (sizes[-1] - sizes[0])
    noop_slope = (r_hi - r_lo) / (sizes[-1] - sizes[0])
    return (
        f"First deploy grows linearly: {slope * 1000:.0f} ms per extra notebook between "
        f"{sizes[0]} and {sizes[-1]} (the rate limit alone is {1000 / limit:.0f} ms per "
        f"import). A no-op redeploy of a new build grows by {noop_slope * 1000:.2f} ms per "
        f"extra notebook ({_s(r_lo)} at {sizes[0]}, {_s(r_hi)} at {sizes[-1]}): nearly flat, "
        "because unchanged notebooks cost no import, only their share of the listings."
    )


def _bounds(r: dict[str, Any]) -> list[str]:
    st = r["settings"]
    lat, limit = st["latency_ms"], st["rate_limit"]
    lat_s = lat / 1000
    ours, legacy = r["ours"], r.get("legacy") or {}
    n = r["corpus"]["notebooks"]
    first = ours["first"]
    up = (r.get("startup") or {}).get("cli_imports")
    lines = []
    floor = first["imports_ok"] / limit
    rate = first["import_phase_rate"]
    lines.append(
        f"**Our first deploy** ({_s(first['seconds'])}) is bounded by the rate limit: "
        f"{first['imports_ok']} imports at {limit:.0f}/s cannot take less than {_s(floor)}. "
        f"The import phase ran at {f'{rate:.1f}/s' if rate else '-'}: "
        f"{first['throttled_429']} imports got 429. The engine paces imports to the known "
        "limit itself (`import_rate`, default 30/s) and keeps the adaptive concurrency "
        "(halve on 429, +1 per window of successes) only as a safety net. The other "
        f"{_s(first['seconds'] - first['imports_ok'] / rate if rate else 0)} are start-up "
        f"({_s(up)}), the planning reads, the lock, storing the release, `_environment`, "
        "the record and history, and the verification listing: round trips of "
        f"{lat:.0f} ms, independent ones issued together."
    )
    if legacy:
        lf = legacy["first"]
        best = lf["seconds"] / floor
        lines.append(
            f"**Legacy** is strictly sequential: {lf['requests']} requests x {lat:.0f} ms = "
            f"{lf['requests'] * lat_s:.1f} s of round trips ({_s(lf['seconds'])} measured); "
            f"at {lf['imports_per_s_wall']:.1f} imports/s it never reaches the {limit:.0f}/s "
            "limit, is never throttled, and costs the same on every run."
        )
        lines.append(
            f"**First deploy vs legacy ({FIRST_GOAL:.0f}x)**: with {lat:.0f} ms latency a "
            f"sequential client imports {1 / lat_s if lat else 0:.0f}/s and the workspace "
            f"admits {limit:.0f}/s, so even a tool with zero start-up and zero overhead that "
            f"imports at exactly the limit is at most {best:.1f}x faster "
            f"({_s(lf['seconds'])} / {_s(floor)}); {FIRST_GOAL:.0f}x leaves "
            f"{_s(lf['seconds'] / FIRST_GOAL - floor)} for start-up and every round trip "
            "that is not a notebook import. The goal sits on the service's rate limit, not "
            "on our engine: it has headroom only where a sequential client is slower than "
            f"limit / {FIRST_GOAL:.0f}, i.e. latency above {1000 / (limit / FIRST_GOAL):.0f} ms."
        )
        budget = lf["seconds"] / REDEPLOY_GOAL
        for key, label in [("unchanged_rebuild", "unchanged (new build)")] + [
            (f"changed_{k}", f"{k} changed") for k in st["changed"]
        ]:
            o = ours.get(key)
            lg = legacy.get("unchanged" if key.startswith("unchanged") else key)
            if not o or not lg:
                continue
            sp = lg["seconds"] / o["seconds"]
            if sp >= REDEPLOY_GOAL:
                continue
            rounds = o["network_busy_seconds"] / lat_s if lat else 0
            lines.append(
                f"**Redeploy {label}**: {_x(sp)} faster, goal {REDEPLOY_GOAL:.0f}x missed "
                f"(needs <= {_s(lg['seconds'] / REDEPLOY_GOAL)}). We take {_s(o['seconds'])}: "
                f"{_s(o['network_busy_seconds'])} waiting on {o['requests']} requests "
                f"(~{rounds:.0f} round trips of {lat:.0f} ms on the critical path) and "
                f"{_s(_other(o))} of start-up, local work and gaps between sequential requests."
            )
        lines.append(
            f"**Why {REDEPLOY_GOAL:.0f}x is out of reach here**: it leaves {_s(budget)} for the "
            f"whole run. Start-up alone (Python + the CLI + databricks-sdk imports) is "
            f"{_s(up)} on this machine, and a safe deploy needs at least ~7 sequential round "
            f"trips (read record and list, take the lock, store release + import, write "
            f"record and history, verify, release the lock) = {_s(7 * lat_s)}. The best "
            f"achievable is therefore about {lg_first_over(lf['seconds'], up, 7 * lat_s)} "
            "faster; the engine notes below say what is done and what is left."
        )
    unchanged = ours.get("unchanged")
    if unchanged:
        lines.append(
            f"**Redeploy of the same artifact** is a no-op (the record says it is already "
            f"there and the listing agrees): {unchanged['requests']} requests, "
            f"{_s(unchanged['seconds'])}, {_s(unchanged['network_busy_seconds'])} of it "
            "round trips (the folders of one tree level are listed together, and the "
            "record is read alongside the listing)."
        )
    lines.append(
        f"Peak memory of a {n}-notebook deploy: {_mb(first['max_rss_mb'])} RSS, mostly the "
        "interpreter and the Databricks SDK (the legacy CLI, without the SDK, peaks at "
        f"{_mb(legacy['first']['max_rss_mb']) if legacy else '-'})."
    )
    return lines


def lg_first_over(legacy_seconds: float, startup: float | None, network: float) -> str:
    return _x(legacy_seconds / ((startup or 0) + network))


ENGINE_CHANGES = [
    "**Done: folders listed level by level in parallel** (`Workspace.list_tree`): one round "
    "trip per tree *depth* instead of one per folder, for both the plan and the verification.",
    "**Done: independent reads together**: the record is read alongside the listing; after "
    "the lock, the record, the history and the listing are re-read together. That second "
    "listing (one round trip per level, ~12 requests here) is the price of planning from "
    "what is there once nobody else can write: a hand edit made before the lock is still "
    "backed up.",
    "**Done: imports paced to the known limit** (`import_rate`, default 30/s) instead of "
    "discovered by 429s; halving on 429 stays as the safety net.",
    "**Done: independent writes together**: the release zip uploads alongside the "
    "notebooks; history is written alongside the pruning of old releases (the record, the "
    "commit point, is written first).",
    "**Left: skip SCIM `Me`** when the root has no `{user}` (it also names the deployer in "
    "the record, so it would move off the critical path rather than go away).",
    "**Left: verify only what changed**: the post-apply check re-lists the whole tree (one "
    "round trip per level); `get-status` of the written and deleted paths would save a "
    "round trip or two for small changes, at the cost of a weaker check.",
    "**Left: start-up** (not fixable in the engine): most of the CLI's fixed cost is "
    "`import databricks.sdk`, whose package `__init__` imports every service module, so "
    "even `databricks.sdk.core` pulls them all in. Worth raising upstream (lazy service "
    "imports); until then it is a floor of about a second per run on a 2-core agent.",
]


def engine_section() -> list[str]:
    out = ["## Engine notes: what was done for these figures, and what is left", ""]
    out += [f"{i}. {text}" for i, text in enumerate(ENGINE_CHANGES, 1)]
    out.append("")
    return out
