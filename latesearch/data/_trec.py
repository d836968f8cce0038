"""Streaming scanner of TREC SGML records (`<DOC>...</DOC>`, `<top>...</top>`)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator

from latesearch.data._io import Bad, Policy

_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def clean(fragment: str) -> str:
    """Text of an SGML fragment: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def iter_records(
    lines: Iterable[tuple[int, str | None]], tag: str, policy: Policy
) -> Iterator[tuple[int, str]]:
    """(start line, body) of each `<tag>...</tag>` record, matched case-insensitively.

    Records may span lines and several may share a line. Text outside records, a record
    opened inside another, one left open at the end, or invalid UTF-8 are reported to
    `policy`; a record with an error is not yielded.
    """
    opener = re.compile(rf"<{tag}(?:\s[^<>]*)?>", re.IGNORECASE)
    closer = re.compile(rf"</{tag}\s*>", re.IGNORECASE)
    start, parts, poisoned = 0, [], False  # start == 0: outside any record
    for lineno, line in lines:
        if line is None:
            where = f" in the <{tag}> record opened on line {start}" if start else ""
            policy.bad(Bad("bad_utf8", f"invalid UTF-8{where}"), lineno)
            poisoned = bool(start)
            continue
        pos = 0
        while True:
            if not start:
                found = opener.search(line, pos)
                stray = line[pos : found.start() if found else len(line)].strip()
                if stray:
                    message = f"text outside <{tag}> records: {stray[:40]!r}"
                    policy.bad(Bad("malformed", message, tag), lineno)
                if found is None:
                    break
                start, parts, poisoned, pos = lineno, [], False, found.end()
                continue
            close, reopen = closer.search(line, pos), opener.search(line, pos)
            if reopen is not None and (close is None or reopen.start() < close.start()):
                message = f"<{tag}> record not closed before the <{tag}> on line {lineno}"
                policy.bad(Bad("unterminated", message, tag), start)
                start, parts, poisoned, pos = lineno, [], False, reopen.end()
                continue
            if close is None:
                parts.append(line[pos:])
                break
            parts.append(line[pos : close.start()])
            if not poisoned:
                yield start, "\n".join(parts)
            start, parts, pos = 0, [], close.end()
    if start:
        policy.bad(Bad("unterminated", f"<{tag}> record not closed at end of file", tag), start)
