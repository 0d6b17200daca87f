"""JUnit XML for an environment's test results (`test --junit FILE`).

Written for what Azure DevOps `PublishTestResults@2` (and GitHub's JUnit reporters) read:
one ``testsuite`` per environment with name/tests/failures/errors/skipped/time/timestamp,
one ``testcase`` per test notebook — or, for a notebook that reported ``cases``, one per
case — with classname (ADO's "test file"), name and time; ``failure``/``error`` with a
message (the first line) and the full text; ``system-out`` with the run URL.

Built with the standard library's ElementTree rather than a JUnit package: the format is
a handful of elements, ElementTree escapes text and attributes correctly, and the
packages on offer either add a runtime dependency for that or lag behind (junit-xml has
had no release since 2020).
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from dbx_promote.record import parse_time
from dbx_promote.testresults import ERRORED, FAILED, SKIPPED, NotebookResult, SuiteResult

# XML 1.0 cannot carry most control characters; a notebook's output may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class _Counts:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0


def _clean(text: str | None) -> str:
    return _NOT_XML.sub("?", text or "")


def _timestamp(iso: str) -> str:
    # The common JUnit schema's timestamp has no zone: UTC, written without one.
    try:
        return parse_time(iso).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, TypeError):
        return "1970-01-01T00:00:00"


def _system_out(test: NotebookResult) -> str:
    lines = [f"notebook: {test.notebook}"]
    if test.run_page_url:
        lines.append(f"run: {test.run_page_url}")
    if test.result_state:
        lines.append(f"result state: {test.result_state}")
    if test.result:
        lines.append(f"exit value: {test.result}")
    return "\n".join(lines)


def _case(
    parent: ET.Element,
    counts: _Counts,
    *,
    classname: str,
    name: str,
    seconds: float,
    status: str,
    message: str,
    text: str,
    out: str,
) -> None:
    case = ET.SubElement(parent, "testcase", classname=classname, name=name, time=f"{seconds:.3f}")
    counts.tests += 1
    counts.time += seconds
    if status == FAILED:
        counts.failures += 1
        ET.SubElement(case, "failure", message=_clean(message), type="failure").text = _clean(text)
    elif status == ERRORED:
        counts.errors += 1
        ET.SubElement(case, "error", message=_clean(message), type="error").text = _clean(text)
    elif status == SKIPPED:
        counts.skipped += 1
        ET.SubElement(case, "skipped", message=_clean(message))
    ET.SubElement(case, "system-out").text = _clean(out)


def _notebook_cases(suite_el: ET.Element, counts: _Counts, test: NotebookResult) -> None:
    classname = test.notebook
    out = _system_out(test)
    if not test.cases:
        text = "\n\n".join(x for x in (test.error, test.trace) if x)
        _case(
            suite_el,
            counts,
            classname=classname,
            name=test.notebook.rsplit("/", 1)[-1],
            seconds=test.duration_s,
            status=test.status,
            message=test.error_line,
            text=text,
            out=out,
        )
        return
    # The run's time is shared among its cases: ADO sums case times into the run's.
    share = test.duration_s / len(test.cases)
    for c in test.cases:
        _case(
            suite_el,
            counts,
            classname=classname,
            name=c.name,
            seconds=share,
            status=c.status,
            message=c.message.splitlines()[0] if c.message else c.status,
            text=c.message,
            out=out,
        )


def junit_xml(result: SuiteResult, *, hostname: str | None = None) -> bytes:
    """The JUnit XML document for ``result`` (UTF-8, with an XML declaration)."""
    root = ET.Element("testsuites", name=f"dbx-promote {result.env}")
    suite_el = ET.SubElement(
        root,
        "testsuite",
        name=f"dbx-promote.{result.env}",
        timestamp=_timestamp(result.started_at),
        hostname=hostname or socket.gethostname(),
    )
    props = ET.SubElement(suite_el, "properties")
    for key, value in (
        ("env", result.env),
        ("version", result.version),
        ("digest", result.digest),
        ("outcome", result.outcome),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    counts = _Counts()
    for test in result.tests:
        _notebook_cases(suite_el, counts, test)
    # ElementTree keeps insertion order: properties first, then cases, then this.
    ET.SubElement(suite_el, "system-out").text = _clean(
        f"{result.env}: {result.version} ({result.digest}): {result.summary()}"
    )
    ET.SubElement(suite_el, "system-err")
    for el in (suite_el, root):
        el.set("tests", str(counts.tests))
        el.set("failures", str(counts.failures))
        el.set("errors", str(counts.errors))
        el.set("time", f"{counts.time:.3f}")
    suite_el.set("skipped", str(counts.skipped))
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def write_junit(result: SuiteResult, path: str | os.PathLike[str]) -> Path:
    """Write `junit_xml` to ``path`` atomically (a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".junit-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(junit_xml(result))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
