"""The `test` command and how test runs are shown: part of the CLI layer (with `cli.py`,
the only code that prints or picks exit codes).

On a terminal a live table (test, state, time, run URL) follows the runs; in a pipeline
log each test gets one line when it has its verdict. Either way a result line closes, and
a suite that did not pass becomes one error line and exit 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from dbx_promote.errors import TestsFailed
from dbx_promote.remote import JobRun
from dbx_promote.testresults import (
    ERRORED,
    FAILED,
    PASSED,
    SKIPPED,
    NotebookResult,
    SuiteEvents,
    SuiteResult,
)

if TYPE_CHECKING:
    from dbx_promote.cli_context import AppContext
    from dbx_promote.config import Environment
    from dbx_promote.deploy import DeployResult
    from dbx_promote.testgate import TestOptions

_STYLE = {PASSED: "green", FAILED: "red", ERRORED: "red"}


class TestView(SuiteEvents):
    """Renders a suite while it runs. Use as a context manager around the run."""

    __test__ = False

    def __init__(self, app: AppContext, *, quiet: bool, stream: bool = True) -> None:
        self.app = app
        self.quiet = quiet
        # In a log, a line per test as it finishes (`test`); a deploy prints its plan
        # first and the test lines after it (stream=False).
        self.stream = stream
        self.rows: dict[str, dict[str, Any]] = {}
        self._live: Any = None

    @property
    def lines_shown(self) -> bool:
        """Whether each test already got its line (in a log; a terminal had the table)."""
        return self.stream and not self.quiet and not self.app.out.is_terminal

    def __enter__(self) -> TestView:
        if not self.quiet and self.app.out.is_terminal:
            from rich.live import Live

            # Transient: once the runs are over the table gives way to one line per test.
            self._live = Live(
                get_renderable=self._table,
                console=self.app.out,
                refresh_per_second=4,
                transient=True,
            )
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
        if self._live is not None and not self._live.is_started:
            self._live.start()  # only once tests run: a deploy without tests shows none
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
        if self.lines_shown:
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


def render_suite(app: AppContext, result: SuiteResult, *, lines_shown: bool) -> None:
    """The lines after a suite: each test (unless a log already has them), the result."""
    if not lines_shown:
        for t in result.tests:
            print_test_line(app, t)
    style = "green" if result.passed else ("yellow" if result.outcome == SKIPPED else "red")
    app.out.print(
        f"[{style}]{result.env} ({result.version}): {result.summary()}[/{style}]",
        highlight=False,
        soft_wrap=True,
    )


def suite_failure(result: SuiteResult, prefix: str = "") -> TestsFailed:
    """The exit-1 error for a suite that did not pass."""
    where = prefix or f"tests in {result.env} ({result.version})"
    return TestsFailed(f"{where}: {result.summary()}")


@dataclass
class DeployTests:
    """What `deploy`, `promote` and `rollback` do about the environment's tests."""

    app: AppContext
    output: str
    no_test: bool = False
    junit: str | None = None
    view: TestView | None = None

    def __post_init__(self) -> None:
        if self.junit:
            from dbx_promote.localpaths import output_file

            output_file(self.junit, "--junit")  # refused now, not after the deploy

    def options(self) -> TestOptions:
        from dbx_promote.testgate import TestOptions

        self.view = TestView(self.app, quiet=self.output == "json", stream=False)
        return TestOptions(run=not self.no_test, events=self.view)

    def warn_skipped(self, env: Environment) -> None:
        if self.no_test and env.tests is not None:
            self.app.err.print(
                f"[bold red]--no-test: the tests of '{env.name}' are skipped; this is "
                "recorded, and the release does not meet 'requires' until they pass[/bold red]"
            )

    def finish(self, result: DeployResult, done: str) -> None:
        """After the deploy's own lines: the tests, JUnit, and exit 1 when they failed."""
        suite = result.tests
        if suite is None:
            return
        if self.junit and suite.outcome != SKIPPED:
            from dbx_promote.junit import write_junit

            write_junit(suite, self.junit)
        if self.output != "json":
            lines = self.view.lines_shown if self.view else False
            render_suite(self.app, suite, lines_shown=lines or suite.outcome == SKIPPED)
        if suite.passed or suite.outcome == SKIPPED:
            return
        if result.rolled_back_to or result.rollback_error:
            then = _after_rollback(result)
            raise TestsFailed(f"smoke tests failed in {result.env}: {suite.failures()}; {then}")
        raise TestsFailed(f"{done}; {suite.summary()}")


def _after_rollback(result: DeployResult) -> str:
    if not result.rolled_back_to:
        return f"{result.rollback_error}; {result.version} stays deployed"
    again = result.rollback_tests
    if again is None or again.passed or again.outcome == SKIPPED:
        return f"rolled back to {result.rolled_back_to}" + (
            ", whose tests pass again" if again is not None and again.passed else ""
        )
    return (
        f"rolled back to {result.rolled_back_to}, whose tests fail too: {again.failures()}; "
        "the environment needs a fix"
    )


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
    from dbx_promote.cli_context import emit_json
    from dbx_promote.config import load_config
    from dbx_promote.junit import write_junit
    from dbx_promote.localpaths import output_file
    from dbx_promote.operations import run_tests

    config = load_config(app.config_path)
    config.environment(env_name)
    if junit_path:
        output_file(junit_path, "--junit")  # refused now, not after the runs
    view = TestView(app, quiet=output == "json")
    with view:
        result = run_tests(config, env_name, only=only, events=view, connect=app.connect)
    if junit_path:
        write_junit(result, junit_path)
    if output == "json":
        emit_json(result.to_dict())
    else:
        render_suite(app, result, lines_shown=view.lines_shown)
        if junit_path:
            app.out.print(f"JUnit results written to {junit_path}", highlight=False)
    if app.ci.active and (output != "json" or app.ci.stdout_free):
        from dbx_promote.ci.markdown import tests_summary_markdown

        app.ci.summary(tests_summary_markdown(result.to_dict()), name=f"tests-{env_name}")
    if not result.passed:
        raise suite_failure(result)
