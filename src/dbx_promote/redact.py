"""Keep secrets out of everything we print or log.

Tokens reach us through environment variables and HTTP headers. Every line the CLI writes
(errors, ``--debug`` logs) goes through :func:`redact`, which hides the values of known
secret variables wherever they appear and masks token-shaped strings.
"""

from __future__ import annotations

import logging
import os
import re

SECRET_ENV_VARS = (
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_PASSWORD",
    "ARM_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "SYSTEM_ACCESSTOKEN",
    "AZURE_DEVOPS_EXT_PAT",
    "AZURE_DEVOPS_PAT",
    "DATABRICKS_OIDC_TOKEN",
)

MASK = "***"

_PATTERNS = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic)\s+[^\s'\",}]+"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bdapi[0-9a-f]{32}(-\d+)?\b"),
    re.compile(
        r"(?i)((?:token|secret|password|access_token|client_secret)['\"]?\s*[:=]\s*['\"]?)[^\s'\",}&]{4,}"
    ),
)


def _secret_values() -> list[str]:
    values = [os.environ.get(name, "") for name in SECRET_ENV_VARS]
    values += [
        v for k, v in os.environ.items() if k.startswith("DBX_PROMOTE_") and k.endswith("_TOKEN")
    ]
    # Short values would mask ordinary words; real secrets are long.
    return sorted((v for v in values if len(v) >= 6), key=len, reverse=True)


def redact(text: str, extra_secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Return ``text`` with secret values and token-shaped strings masked."""
    for value in [*_secret_values(), *(s for s in extra_secrets if len(s) >= 6)]:
        text = text.replace(value, MASK)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)} {MASK}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _PATTERNS[2].sub(MASK, text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}{MASK}", text)
    return text


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line has passed through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
