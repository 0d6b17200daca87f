"""A host that accepts connections and never answers (issue 13, item 2): every command that
talks to a workspace fails within a bound, with one line naming the host and exit 2, as a
refused connection does; it never waits out the SDK's retry budget (minutes).

The real CLI runs in a subprocess against `SilentHost`. Most cases use a 1 s
`DBX_PROMOTE_CONNECT_TIMEOUT` to keep the suite quick; one runs with the defaults and
shows the documented 30 s bound. A timeout setting that is not a number is bad input
(item 8), refused before anything is sent.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from silent_host import SilentHost

from cli_helpers import HEADER, assert_error, build_releases, cli_env, run_cli

CONFIG = """\
project: app
environments:
  test:
    root: /Shared/app/test
    tests:
      notebooks: [tests/*]
      compute: {serverless: true}
  prod:
    root: /Shared/app/prod
    requires: test
"""
NOTEBOOKS = {"etl.py": HEADER + "print(1)\n", "tests/smoke.py": HEADER + "print(2)\n"}
SHORT = 1.0  # DBX_PROMOTE_CONNECT_TIMEOUT in the quick cases
# Generous on purpose: it tells a wait for the connect timeout (seconds) from a wait for
# the SDK's retry budget (minutes), on a loaded machine too.
SHORT_BOUND = 10.0
DEFAULT_BOUND = 30.0


@pytest.fixture
def silent() -> Iterator[SilentHost]:
    with SilentHost() as host:
        yield host


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    extra: tuple[tuple[str, str], ...] = (("DBX_PROMOTE_CONNECT_TIMEOUT", str(SHORT)),)
    profile: bool = False  # the host comes only from a ~/.databrickscfg profile
    answers_probe: bool = False  # the host passes the connection check, then hangs


@dataclass(frozen=True)
class Outcome:
    result: subprocess.CompletedProcess[str]
    host: str
    # From the host's first accepted connection to the process's exit: the wait the host
    # caused, without the start-up of Python and the SDK (slow on a loaded machine).
    seconds: float


def run(cfg: Path, case: Case) -> Outcome:
    """The console script in a process of its own, against a silent host of its own."""
    extra = dict(case.extra)
    with SilentHost(answer_probe=case.answers_probe) as host:
        if case.profile:
            profile = cfg.parent / "databrickscfg"
            profile.write_text(f"[silent]\nhost = {host.url}\ntoken = dapi-not-a-real-one\n")
            extra["DATABRICKS_CONFIG_FILE"] = str(profile)
            cfg = cfg.parent / "profile.yml"
            cfg.write_text(
                "project: app\nenvironments:\n  test: {root: /Shared/a, profile: silent}\n"
            )
        result = subprocess.run(
            [sys.executable, "-m", "dbx_promote", "--config", str(cfg), *case.args],
            capture_output=True,
            text=True,
            env=cli_env(None if case.profile else host.url, extra),
            stdin=subprocess.DEVNULL,
            cwd=cfg.parent,
            timeout=180,
        )
        ended = time.monotonic()
        assert host.first_accepted_at is not None, result.stderr  # it was reached
        return Outcome(result, host.url, ended - host.first_accepted_at)


# Every command that talks to a workspace ("ART" is the built artifact).
COMMANDS = [
    Case(("deploy", "ART", "--env", "test")),
    Case(("deploy", "ART", "--env", "test", "--dry-run")),
    Case(("deploy", "--env", "test", "--dry-run")),  # the working tree, built in memory
    Case(("diff", "ART", "--env", "test")),
    Case(("promote", "--from", "test", "--to", "prod", "--yes")),
    Case(("promote", "--from", "test", "--to", "prod", "--dry-run")),
    Case(("rollback", "--env", "test")),
    Case(("rollback", "--env", "test", "--dry-run")),
    Case(("status", "--env", "test")),
    Case(("history", "--env", "test")),
    Case(("test", "--env", "test")),
    Case(("status", "--env", "test"), profile=True),
]
# A host that answers the connection check and hangs on every API request.
HANGS = [
    Case(("status", "--env", "test"), answers_probe=True),
    Case(("deploy", "ART", "--env", "test"), answers_probe=True),
    Case(("promote", "--from", "test", "--to", "prod", "--yes"), answers_probe=True),
]
HANGS_DEFAULTS = Case(("deploy", "ART", "--env", "test"), extra=(), answers_probe=True)
# These report each environment (test and prod, or the one named) instead of stopping at
# the first; the exit code is the command's own: status shows what it can, --check and
# doctor fail.
REPORTS = {
    Case(("status",)): 0,
    Case(("status", "--check")): 1,
    Case(("doctor", "--output", "json")): 1,
    Case(("doctor", "--env", "test")): 1,
}
DEFAULTS = Case(("status", "--env", "test"), extra=())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[Case, Outcome]:
    """Every case, four processes at a time: the waits overlap, the bounds hold per case."""
    base = tmp_path_factory.mktemp("silent")
    built = build_releases(base, {"1.0.0": NOTEBOOKS}, CONFIG)["1.0.0"]
    cfg = base / "src-1.0.0" / "dbx-promote.yml"
    cases = [DEFAULTS, HANGS_DEFAULTS, *COMMANDS, *HANGS, *REPORTS]  # the longest first
    with ThreadPoolExecutor(max_workers=4) as pool:

        def one(case: Case) -> Outcome:
            args = tuple(str(built.path) if a == "ART" else a for a in case.args)
            return run(cfg, replace(case, args=args))

        return dict(zip(cases, pool.map(one, cases), strict=True))


@pytest.mark.parametrize(
    "case", COMMANDS, ids=lambda c: " ".join(c.args) + " (profile)" * c.profile
)
def test_every_command_fails_fast_with_one_line_naming_the_silent_host(outcomes, case):
    got = outcomes[case]
    assert_error(got.result, 2, got.host, "accepted the connection but did not answer within 1 s")
    assert got.seconds < SHORT_BOUND, got.seconds


@pytest.mark.parametrize("case", REPORTS, ids=lambda c: " ".join(c.args))
def test_status_and_doctor_report_the_silent_host_per_environment_in_moments(outcomes, case):
    got = outcomes[case]
    assert got.result.returncode == REPORTS[case], (got.result.stdout, got.result.stderr)
    reported = 1 if "--env" in case.args else 2  # each environment asked about
    assert got.result.stdout.count("did not answer within 1 s") >= reported, got.result.stdout
    assert "Traceback" not in got.result.stdout + got.result.stderr
    assert got.seconds < 2 * SHORT_BOUND, got.seconds


def test_with_the_default_timeouts_a_silent_host_fails_within_30_seconds(outcomes):
    got = outcomes[DEFAULTS]
    assert_error(got.result, 2, "did not answer within 10 s")
    assert got.seconds < DEFAULT_BOUND, got.seconds


@pytest.mark.parametrize("case", HANGS, ids=lambda c: " ".join(c.args))
def test_a_host_that_answers_the_check_and_hangs_on_its_api_fails_fast(outcomes, case):
    got = outcomes[case]
    assert_error(
        got.result, 2, got.host, "answered the connection check but not its API within 1 s"
    )
    assert got.seconds < SHORT_BOUND, got.seconds


def test_with_the_default_timeouts_a_host_hanging_on_its_api_fails_within_30_seconds(outcomes):
    got = outcomes[HANGS_DEFAULTS]
    assert_error(got.result, 2, "not its API within 10 s")
    assert got.seconds < DEFAULT_BOUND, got.seconds


def test_a_refused_connection_reads_the_same_way(tmp_path):
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(CONFIG)
    result = run_cli(cfg, "status", "--env", "test", host="http://127.0.0.1:9")
    assert_error(result, 2, "cannot reach workspace http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DBX_PROMOTE_RETRY_TIMEOUT", "soon"),
        ("DBX_PROMOTE_RETRY_TIMEOUT", "-5"),
        ("DBX_PROMOTE_CONNECT_TIMEOUT", "nan"),
        ("DBX_PROMOTE_CONNECT_TIMEOUT", "inf"),
        ("DBX_PROMOTE_CONNECT_TIMEOUT", "10 s"),
    ],
)
def test_a_timeout_setting_that_is_not_a_number_is_bad_input_before_any_connection(
    tmp_path, silent, name, value
):
    cfg = tmp_path / "dbx-promote.yml"
    cfg.write_text(CONFIG)
    result = run_cli(cfg, "status", "--env", "test", host=silent.url, extra_env={name: value})
    assert_error(result, 2, name, repr(value))
    assert silent.accepted == 0
