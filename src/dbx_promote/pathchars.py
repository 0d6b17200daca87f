"""The one rule for the characters a path or folder name may hold.

A control character (Unicode category Cc: C0, DEL and C1 such as U+0085, a line break to
some readers) turns one line of output into two or into terminal escapes; an invisible
format character (Cf: bidi overrides such as U+202E, zero-width spaces) makes a name that
looks like another one. The workspace would store either, and every later reader would
have to refuse it, so the config's roots and sources, a build's file names, an artifact's
manifest and a folder's record and lock all use this one rule: what one accepts, the
others read back.
"""

from __future__ import annotations

import unicodedata

_HIDDEN = ("Cc", "Cf")


def hidden_character_problem(text: str) -> str | None:
    """Why ``text`` cannot be a path (its first control or invisible character), else ``None``."""
    hidden = next((c for c in text if unicodedata.category(c) in _HIDDEN), None)
    if hidden is None:
        return None
    return f"holds a control or invisible character (U+{ord(hidden):04X})"
