"""The `test` command and how test runs are shown: part of the CLI layer (with `cli.py`,
the only code that prints or picks exit codes).

On a terminal a live table (test, state, time, run URL) follows the runs; in a pipeline
log each test gets one line when it has its verdict. Either way a result line closes, and
a suite that did not pass becomes one error line and exit 1.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from dbx_promote.errors import TestsFailed
from dbx_promote.remote import JobRun
from dbx_promote.testresults import (
    ERRORED,
    FAILED,
    PASSED,
    NotebookResult,
    SuiteEvents,
    SuiteResult,
)

if TYPE_CHECKING:
    from dbx_promote.cli import AppContext

_STYLE = {PASSED: "green", FAILED: "red", ERRORED: "red"}


class TestView(SuiteEvents):
    """Renders a suite while it runs. Use as a context manager around the run."""

    __test__ = False

    def __init__(self, app: AppContext, *, quiet: bool) -> None:
        self.app = app
        self.quiet = quiet
        self.rows: dict[str, dict[str, Any]] = {}
        self._live: Any = None

    def __enter__(self) -> TestView:
        if not self.quiet and self.app.out.is_terminal:
            from rich.live import Live

            self._live = Live(
                get_renderable=self._table, console=self.app.out, refresh_per_second=4
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _table(self) -> Any:
        from rich.table import Table

        table = Table("test", "state", "time", "run")
        now = time.monotonic()
        for notebook, row in self.rows.items():
            seconds = row["duration"] if row["duration"] is not None else now - row["since"]
            style = _STYLE.get(row["state"], "")
            state = f"[{style}]{row['state']}[/{style}]" if style else row["state"]
            table.add_row(notebook, state, f"{seconds:.0f}s", row["url"] or "")
        return table

    def test_submitted(self, notebook: str, run_id: int) -> None:
        self.rows[notebook] = {
            "state": "SUBMITTED",
            "since": time.monotonic(),
            "duration": None,
            "url": None,
        }

    def test_state(self, notebook: str, run: JobRun) -> None:
        row = self.rows.get(notebook)
        if row is not None:
            row.update(state=run.state, url=run.run_page_url)

    def test_finished(self, result: NotebookResult) -> None:
        # A test that could not be submitted has no row yet.
        row = self.rows.setdefault(result.notebook, {"since": time.monotonic()})
        row.update(state=result.status, duration=result.duration_s, url=result.run_page_url)
        if not self.quiet and self._live is None:
            print_test_line(self.app, result)


def print_test_line(app: AppContext, t: NotebookResult) -> None:
    """One line per test: status, notebook, time, and for a failure its error and URL."""
    style = _STYLE.get(t.status, "")
    line = f"[{style}]{t.status:<8}[/{style}] {t.notebook}  {t.duration_s:.1f}s"
    if t.status != PASSED:
        line += f"  {t.error_line}"
    if t.run_page_url:
        line += f"  {t.run_page_url}"
    app.out.print(line, highlight=False, soft_wrap=True)


def render_suite(app: AppContext, result: SuiteResult, *, live_shown: bool) -> None:
    """The lines after a suite: failing tests (once the live table is gone), the result."""
    if live_shown:
        for t in result.not_passed:
            print_test_line(app, t)
    style = "green" if result.passed else "red"
    app.out.print(
        f"[{style}]{result.env} ({result.version}): {result.summary()}[/{style}]",
        highlight=False,
        soft_wrap=True,
    )


def suite_failure(result: SuiteResult, prefix: str = "") -> TestsFailed:
    """The exit-1 error for a suite that did not pass."""
    where = prefix or f"tests in {result.env} ({result.version})"
    return TestsFailed(f"{where}: {result.summary()}")


@click.command("test")
@click.option("--env", "env_name", required=True, help="Environment whose tests to run.")
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write JUnit XML here (for PublishTestResults@2).",
)
@click.option("--only", default=None, help="Only the tests matching this glob.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def test_cmd(
    app: AppContext, env_name: str, junit_path: str | None, only: str | None, output: str
) -> None:
    """Run an environment's test notebooks as job runs against the release deployed there."""
    from dbx_promote.cli import emit_json
    from dbx_promote.config import load_config
    from dbx_promote.envtests import run_tests
    from dbx_promote.junit import write_junit

    config = load_config(app.config_path)
    config.environment(env_name)
    view = TestView(app, quiet=output == "json")
    with view:
        result = run_tests(config, env_name, only=only, events=view, connect=app.connect)
    if junit_path:
        write_junit(result, junit_path)
    if output == "json":
        emit_json(result.to_dict())
    else:
        render_suite(app, result, live_shown=app.out.is_terminal)
        if junit_path:
            app.out.print(f"JUnit results written to {junit_path}", highlight=False)
    if not result.passed:
        raise suite_failure(result)
