"""Making learner-controlled text safe to show: no control characters, bounded length.

Anything a learner controls (an exception's message, a file name, what their code printed) may hold
ANSI escape sequences that drive the instructor's terminal, newlines that forge report lines, or
megabytes of text. Every report line, CSV cell and ``results.json`` text goes through
:func:`escape_controls` and :func:`cap` before it is written.
"""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL, the bidirectional-text overrides (they reorder what a reader
# sees) and the Unicode line and paragraph separators (they break lines in many viewers).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
MAX_MESSAGE_CHARS = 2_000  # one message from the sandbox (an exception's text, a refusal)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def escape_controls(text: object, keep: str = "") -> str:
    """``text`` as a string with every control character written as a visible escape (``\\x1b``,
    ``\\n``...), except the characters in ``keep`` (e.g. ``"\\n\\t"`` for a multi-line log)."""
    text = str(text)
    if keep:
        return _CONTROLS.sub(lambda m: m.group(0) if m.group(0) in keep else _escape(m), text)
    return _CONTROLS.sub(_escape, text)


def cap(text: str, limit: int, what: str = "characters") -> str:
    """``text`` cut to at most ``limit`` characters, saying how much was cut."""
    if limit < 40:
        raise ValueError(f"limit={limit} is too small to hold the cut marker; give at least 40")
    if len(text) <= limit:
        return text
    marker = f" [... {len(text) - limit} more {what} cut]"
    return text[: limit - len(marker)] + marker


def clean(text: object, limit: int, keep: str = "") -> str:
    """:func:`escape_controls` then :func:`cap` (escaping first, so the cap holds on what is shown)."""
    return cap(escape_controls(text, keep), limit)


def said(text: object) -> str:
    """A message the sandbox sent (learner-controlled): bounded, every control character but the newline
    escaped, as ``check`` shows it (each report then escapes newlines where one line is needed)."""
    return clean(text, MAX_MESSAGE_CHARS, keep="\n")
