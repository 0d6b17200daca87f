"""The JUnit file validates against the common schema and carries counts, messages, URLs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from dbx_promote.junit import junit_xml, write_junit
from dbx_promote.testresults import CaseResult, NotebookResult, SuiteResult

SCHEMA = xmlschema.XMLSchema(Path(__file__).parent / "schemas" / "junit.xsd")
URL = "http://127.0.0.1:1/#job/1/run/"


def suite(*tests: NotebookResult, outcome: str = "failed") -> SuiteResult:
    return SuiteResult(
        "test", "1.4.0", "sha256:" + "a" * 64, outcome, "2026-05-01T10:00:00Z",
        "2026-05-01T10:01:00Z", tuple(tests),
    )  # fmt: skip


PASS = NotebookResult("tests/check_config", "passed", 11, URL + "11", "SUCCESS", 3.5)
FAIL = NotebookResult(
    "tests/test_helpers",
    "failed",
    12,
    URL + "12",
    "FAILED",
    2.0,
    error="AssertionError: revenue is negative\nmore detail",
    trace="Traceback (most recent call last):\n  ...",
)
ERR = NotebookResult("tests/smoke", "errored", error="could not start: cluster 0601 does not exist")
CASES = NotebookResult(
    "tests/cases",
    "failed",
    13,
    URL + "13",
    "SUCCESS",
    3.0,
    cases=(
        CaseResult("orders are unique", "passed"),
        CaseResult("no negative revenue", "failed", "3 rows below 0\nrow 1"),
        CaseResult("slow check", "skipped", "not on test data"),
    ),
)


def parse(result: SuiteResult) -> ET.Element:
    raw = junit_xml(result, hostname="agent-1")
    SCHEMA.validate(raw.decode())
    return ET.fromstring(raw)


def test_one_testcase_per_notebook_with_counts_that_add_up():
    root = parse(suite(PASS, FAIL, ERR))
    ts = root.find("testsuite")
    assert ts is not None
    assert (ts.get("name"), ts.get("tests"), ts.get("failures"), ts.get("errors")) == (
        "dbx-promote.test", "3", "1", "1",
    )  # fmt: skip
    assert ts.get("timestamp") == "2026-05-01T10:00:00"
    assert float(ts.get("time", "0")) == pytest.approx(5.5)
    assert root.get("tests") == "3"
    names = [(c.get("classname"), c.get("name")) for c in ts.iter("testcase")]
    assert names == [
        ("tests/check_config", "check_config"),
        ("tests/test_helpers", "test_helpers"),
        ("tests/smoke", "smoke"),
    ]
    props = {p.get("name"): p.get("value") for p in ts.iter("property")}
    assert props["version"] == "1.4.0" and props["digest"].startswith("sha256:")


def test_a_failure_carries_its_first_line_as_message_and_the_trace_as_text():
    ts = parse(suite(FAIL)).find("testsuite")
    assert ts is not None
    failure = ts.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "AssertionError: revenue is negative"
    assert "Traceback" in (failure.text or "") and "more detail" in (failure.text or "")
    out = ts.find("testcase/system-out")
    assert out is not None and URL + "12" in (out.text or "")


def test_a_test_that_could_not_start_is_an_error_not_a_failure():
    ts = parse(suite(ERR)).find("testsuite")
    assert ts is not None
    assert ts.find("testcase/failure") is None
    error = ts.find("testcase/error")
    assert error is not None and "cluster 0601 does not exist" in (error.get("message") or "")


def test_cases_replace_their_notebook_with_one_testcase_each():
    ts = parse(suite(PASS, CASES)).find("testsuite")
    assert ts is not None
    cases = ts.findall("testcase")
    assert [c.get("name") for c in cases] == [
        "check_config", "orders are unique", "no negative revenue", "slow check",
    ]  # fmt: skip
    assert {c.get("classname") for c in cases[1:]} == {"tests/cases"}
    assert (ts.get("tests"), ts.get("failures"), ts.get("skipped")) == ("4", "1", "1")
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == "3 rows below 0"
    skipped = cases[3].find("skipped")
    assert skipped is not None and skipped.get("message") == "not on test data"


def test_control_characters_in_output_still_make_valid_xml():
    noisy = NotebookResult("tests/x", "failed", 1, None, "FAILED", 1.0, result="\x1b[31mred\x00")
    root = parse(suite(noisy))
    out = root.find("testsuite/testcase/system-out")
    assert out is not None and "red" in (out.text or "")


def test_write_junit_creates_the_folder_and_replaces_the_file(tmp_path):
    target = tmp_path / "out" / "TEST-dbx.xml"
    write_junit(suite(PASS, outcome="passed"), target)
    write_junit(suite(PASS, FAIL), target)
    SCHEMA.validate(str(target))
    assert ET.parse(target).getroot().get("tests") == "2"
    assert [p.name for p in target.parent.iterdir()] == ["TEST-dbx.xml"]
