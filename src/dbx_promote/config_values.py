"""The typed readers of config values: each checks one value and, when it is wrong,
appends a problem naming where it is (all problems of a config are reported at once)."""

from __future__ import annotations

from typing import Any


def read_mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where} must be a mapping")
        return {}
    return dict(value)


def read_opt_str(value: Any, where: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where} must be a non-empty string")
        return None
    return value.strip()


def read_str_tuple(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where} must be a list of strings")
        return ()
    return tuple(value)


def read_bool(value: Any, where: str, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{where} must be true or false")
        return False
    return value


def read_int(
    value: Any, where: str, problems: list[str], minimum: int = 0, maximum: int | None = None
) -> int:
    # A count is a loop bound or a thread pool: 10^8 of them would exhaust the machine.
    top = f" and <= {maximum}" if maximum is not None else ""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not minimum <= value <= (maximum if maximum is not None else value)
    ):
        problems.append(f"{where} must be an integer >= {minimum}{top}")
        return minimum
    return value
