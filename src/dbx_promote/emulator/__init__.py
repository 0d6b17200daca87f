"""A local Databricks workspace emulator (Workspace API 2.0, Jobs one-time runs) for tests.

See ``docs/emulator.md`` for the endpoints, the control API and every choice made where
the real service's behaviour is not known.
"""

from __future__ import annotations

from dbx_promote.emulator.client import EmulatorControl
from dbx_promote.emulator.control import Fault, JobRule
from dbx_promote.emulator.principals import Principal, parse_principal
from dbx_promote.emulator.server import Emulator
from dbx_promote.emulator.store import ApiError

__all__ = [
    "ApiError",
    "Emulator",
    "EmulatorControl",
    "Fault",
    "JobRule",
    "Principal",
    "parse_principal",
]
