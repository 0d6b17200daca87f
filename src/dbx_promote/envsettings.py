"""Settings read from environment variables (a pipeline's variables), checked like the
config is: a value that is not a usable number is bad input (exit 2, one line), never an
internal error half-way through a command."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from dbx_promote.errors import ConfigError

#: The longest wait any setting may ask for; far beyond it, clocks and timers overflow.
MAX_SECONDS = 24 * 3600.0


def seconds(
    name: str,
    default: float,
    *,
    above: float = 0.0,
    at_most: float = MAX_SECONDS,
    environ: Mapping[str, str] | None = None,
) -> float:
    """The number of seconds in variable ``name``, or ``default`` when it is unset or empty.

    Raises `ConfigError` (exit 2) when it is not a number more than ``above`` and at most
    ``at_most``.
    """
    raw = (os.environ if environ is None else environ).get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {_shown(raw)}") from None
    if not math.isfinite(value) or not above < value <= at_most:
        raise ConfigError(
            f"{name} must be a finite number of seconds above {above:g} and at most "
            f"{at_most:g}, not {_shown(raw)}"
        )
    return value


def _shown(raw: str) -> str:
    # repr keeps a newline on the one error line; a pasted blob is cut short.
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


__all__ = ["seconds"]
