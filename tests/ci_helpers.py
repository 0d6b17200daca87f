"""Reading CI output the way the GitHub Actions runner reads it."""

from __future__ import annotations

import re
from pathlib import Path


def runner_unescape_data(value: str) -> str:
    """The runner's ActionCommand.UnescapeData (percent last)."""
    return value.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def runner_unescape_property(value: str) -> str:
    """The runner's ActionCommand.UnescapeProperty."""
    for token, repl in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ",")):
        value = value.replace(token, repl)
    return value.replace("%25", "%")


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Split ``::name k=v,k=v::message`` the way the runner does."""
    m = re.fullmatch(r"::(?P<name>[^ :]+)(?: (?P<props>.*?))?::(?P<msg>.*)", line)
    assert m, line
    props = {}
    for pair in (m["props"] or "").split(","):
        if pair:
            key, _, value = pair.partition("=")
            props[key] = runner_unescape_property(value)
    return m["name"], props, runner_unescape_data(m["msg"])


def read_outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT as the runner does: ``k=v`` lines and ``k<<DELIM`` blocks."""
    lines = path.read_text().split("\n")
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            out[key] = "\n".join(lines[i + 1 : end])
            i = end + 1
        elif line:
            key, _, value = line.partition("=")
            out[key] = value
            i += 1
        else:
            i += 1
    return out
