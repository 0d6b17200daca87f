"""Reading documents the tool does not control, within bounds.

An artifact's manifest and a folder's record, history and lock can be crafted or edited by
hand. What they say becomes paths, names, loop counts and comparisons, so each value is
read with its type and range checked: a number such as a release's ``parts`` is a loop
bound (10^9 of them would exhaust memory), a string can be megabytes long, and JSON nested
a million deep makes the parser itself raise `RecursionError`.

`load_json` and `Fields` raise `BadDocument` (a `ValueError`) naming the field; the reader
of each document wraps it in its own error with the file's name and how to fix it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: Longest text value accepted from a document (a workspace path is at most 4096 characters).
MAX_TEXT = 4096
#: Larger than any object id, millisecond timestamp or pid the workspace or an OS gives.
MAX_INT = 2**63 - 1
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


class BadDocument(ValueError):
    """A document is not what it must be; the message names the field and the problem."""


def _no_constant(name: str) -> float:
    raise BadDocument(f"not valid JSON ({name} is not a number JSON allows)")


def load_json(raw: bytes) -> Any:
    """Parse ``raw`` as UTF-8 JSON, refusing what the parser alone would crash on or
    accept: nesting deep enough to exhaust the stack, integers too long to convert, and
    the non-standard NaN and Infinity.

    Raises `BadDocument` with a short reason.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadDocument("not valid JSON (not UTF-8)") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise BadDocument("not valid JSON") from None
    except RecursionError:
        raise BadDocument("not valid JSON (nested too deeply)") from None
    except BadDocument:
        raise
    except ValueError:  # an integer of more digits than Python converts
        raise BadDocument("not valid JSON (a number with too many digits)") from None


_MISSING: Any = object()


class Fields:
    """Typed reads from one JSON object; every failure names the field (``prefix`` first).

    Args:
        data: the object (anything else is refused as "not a JSON object").
        prefix: where it sits in the document, e.g. ``releases[0].``.
    """

    def __init__(self, data: Any, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            where = f"field '{prefix.rstrip('.')}'" if prefix else "the document"
            raise BadDocument(f"{where} is not a JSON object")
        self.data = data
        self.prefix = prefix

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise BadDocument(f"field '{self.prefix}{key}' is missing")
        return default

    def _bad(self, key: str, value: Any, expected: str) -> BadDocument:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return BadDocument(f"field '{self.prefix}{key}' is {shown}, not {expected}")

    def text(
        self,
        key: str,
        default: Any = _MISSING,
        *,
        pattern: re.Pattern[str] | None = None,
        limit: int = MAX_TEXT,
    ) -> Any:
        """A string of at most ``limit`` characters (matching ``pattern`` if given), or
        ``default`` (which may be None) when the key is absent or null."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            raise self._bad(
                key, value, "a string" if pattern is None else f"like {pattern.pattern}"
            )
        if len(value) > limit:
            raise BadDocument(
                f"field '{self.prefix}{key}' is {len(value)} characters, over {limit}"
            )
        return value

    def digest(self, key: str) -> str:
        """A ``sha256:<64 hex>`` artifact digest."""
        return str(self.text(key, pattern=_DIGEST_RE))

    def sha256(self, key: str) -> str:
        """A 64-digit hex content hash."""
        return str(self.text(key, pattern=_HEX_RE))

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        """true or false (never a string or number that merely looks like one)."""
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._bad(key, value, "true or false")
        return value

    def number(self, key: str, low: int, high: int, default: Any = _MISSING) -> Any:
        """A whole number from ``low`` to ``high``, or ``default`` (may be None) when the
        key is absent or null."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._bad(key, value, f"a whole number from {low} to {high}")
        return value

    def texts(self, key: str, default: Any = _MISSING) -> list[str]:
        """A list of strings (each bounded like `text`)."""
        value = self._get(key, default)
        if not isinstance(value, list):
            raise self._bad(key, value, "a list")
        items = Fields({f"{key}[{i}]": v for i, v in enumerate(value)}, self.prefix)
        return [items.text(k) for k in items.data]

    def mapping(self, key: str, default: Any = _MISSING) -> Any:
        """A JSON object as a dict, or ``default`` (may be None) when absent or null."""
        value = self._get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, Mapping):
            raise self._bad(key, value, "a JSON object")
        return dict(value)

    def child(self, key: str) -> Fields:
        """The JSON object under ``key``."""
        return Fields(self._get(key, _MISSING), f"{self.prefix}{key}.")

    def children(self, key: str, default: Any = _MISSING) -> list[Fields]:
        """The JSON objects in the list under ``key``."""
        value = self._get(key, default)
        if not isinstance(value, list):
            raise self._bad(key, value, "a list")
        return [Fields(v, f"{self.prefix}{key}[{i}].") for i, v in enumerate(value)]

    def unknown(self, known: set[str]) -> None:
        """Refuse keys the document's reader does not know (they would be lost)."""
        extra = sorted(str(k) for k in self.data if k not in known)
        if extra:
            raise BadDocument(f"field '{self.prefix}{extra[0]}' is unknown")
