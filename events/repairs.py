"""Keep, repair, say: the repairs every protocol applies to odd but real input.

Telemetry is never lost over a label. What can be kept is kept; what can be repaired is repaired
here (a NUL replaced, a non-finite number nulled, an over-long text cut with a marker, a payload
fitted under the event limit); each repair is written to a `Repairs` ({field path: [message]},
the shape of an error answer) that the API answers as warnings and an event keeps in its payload
under `repaired`. docs/reliability.md "Keep, repair, say" lists every rule.

Why each repair:
- U+0000: PostgreSQL's text and jsonb refuse it (SQLite does not, but both databases must hold
  the same data), so it becomes U+FFFD, the Unicode replacement character.
- NaN and +-Infinity: Python's `json.dumps` (the official SDK 0.3.26's serialiser) writes them as
  bare `NaN` / `Infinity` / `-Infinity`, which are not JSON; api/parsers.py reads such a body with
  each one as `NONFINITE[...]` (a string that cannot otherwise occur: it holds a NUL), and the
  walk below turns it into null, at its path.
"""

from __future__ import annotations

import math
import re

import orjson

# What api/parsers.py puts where a body had a bare NaN / Infinity / -Infinity. The NUL makes the
# string impossible to store as sent, so a payload holding one is always walked (see may_need_walk).
NONFINITE = {
    b"NaN": b'"\\u0000agentops:NaN"',
    b"Infinity": b'"\\u0000agentops:Infinity"',
    b"-Infinity": b'"\\u0000agentops:-Infinity"',
    # A number beyond a double's range (1e400, a 400-digit integer): orjson refuses it as infinity.
    b"overflow": b'"\\u0000agentops:overflow"',
}
NONFINITE_TEXT = {
    orjson.loads(v): k.decode() if k != b"overflow" else "A number beyond a double's range"
    for k, v in NONFINITE.items()
}
NUL = "\x00"
REPLACEMENT = "\ufffd"
# A JSON string (skipped whole, escapes included), a bare non-finite constant, or a number.
_NONFINITE_TOKEN = re.compile(
    rb'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?', re.DOTALL
)
_FLOAT_DIGITS = 300  # without an exponent, fewer digits than this cannot overflow a double
MAX_MESSAGES_PER_KIND = 20  # a payload with 10,000 NULs gets 20 paths and a count, not 10,000


class Repairs(dict):
    """{field path: [what was changed]}; empty when nothing was."""

    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)

    def nest(self, prefix: str) -> Repairs:
        """A view that adds under `prefix.` (for a sub-object's own paths)."""
        return _Nested(self, prefix)


class _Nested(Repairs):
    def __init__(self, parent: Repairs, prefix: str):
        super().__init__()
        self._parent, self._prefix = parent, prefix

    def add(self, path: str, message: str) -> None:
        self._parent.add(f"{self._prefix}.{path}" if path else self._prefix, message)


def join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


# --- the body: bare NaN / Infinity ----------------------------------------------------------------


def rewrite_nonfinite(body: bytes) -> bytes | None:
    """The body with each bare NaN/Infinity/-Infinity, and each number too large for a double
    (outside strings), as its NONFINITE string; None when it has none. Only called once orjson
    has refused the body for one of these: the common path never pays for it."""
    found = False

    def replace(match: re.Match) -> bytes:
        nonlocal found
        token = match.group()
        first = token[:1]
        if first == b'"':
            return token
        if first in b"NI" or token[:2] == b"-I":
            found = True
            return NONFINITE[token]
        short = len(token) < _FLOAT_DIGITS and b"e" not in token and b"E" not in token
        if short or math.isfinite(float(token)):
            return token
        found = True
        return NONFINITE[b"overflow"]

    rewritten = _NONFINITE_TOKEN.sub(replace, body)
    return rewritten if found else None


def may_need_walk(dumped: bytes) -> bool:
    """Whether a value's JSON text may hold a NUL or a non-finite marker: the cheap test (a byte
    search) that decides whether `clean` must walk it."""
    return b"\\u0000" in dumped


def clean(value, path: str, repairs: Repairs):
    """`value` with every NUL in its strings and keys replaced by U+FFFD and every NONFINITE
    marker nulled; each change said at its path (at most MAX_MESSAGES_PER_KIND paths per kind).
    Returns the same object when nothing changed. Depth is bounded by the parser (68 levels)."""
    counts = {"nul": 0, "nonfinite": 0}
    result = _clean(value, path, repairs, counts)
    for kind, label in (("nul", "NUL characters"), ("nonfinite", "non-finite numbers")):
        extra = counts[kind] - MAX_MESSAGES_PER_KIND
        if extra > 0:
            repairs.add(path, f"and {extra} more {label} repaired the same way")
    return result


def _say(repairs, path, counts, kind, message):
    counts[kind] += 1
    if counts[kind] <= MAX_MESSAGES_PER_KIND:
        repairs.add(path, message)


def _clean(value, path, repairs, counts):
    kind = type(value)
    if kind is str:
        if NUL not in value:
            return value
        if value in NONFINITE_TEXT:
            _say(
                repairs,
                path,
                counts,
                "nonfinite",
                f"{NONFINITE_TEXT[value]} is not a JSON number: stored as null",
            )
            return None
        _say(repairs, path, counts, "nul", "NUL characters replaced by U+FFFD")
        return value.replace(NUL, REPLACEMENT)
    if kind is dict:
        out = None
        for key, item in value.items():
            new_key = key
            if NUL in key:
                new_key = key.replace(NUL, REPLACEMENT)
                _say(
                    repairs,
                    join(path, new_key),
                    counts,
                    "nul",
                    "NUL characters in the key replaced by U+FFFD",
                )
            new_item = _clean(item, join(path, new_key), repairs, counts)
            if out is None and (new_key is not key or new_item is not item):
                out = {}
                for done_key, done_item in value.items():
                    if done_key is key:
                        break
                    out[done_key] = done_item
            if out is not None:
                out[new_key] = new_item
        return value if out is None else out
    if kind is list:
        out = None
        for index, item in enumerate(value):
            new_item = _clean(item, join(path, index), repairs, counts)
            if new_item is not item and out is None:
                out = list(value[:index])
            if out is not None:
                out.append(new_item)
        return value if out is None else out
    return value


# --- text: cut with a marker -------------------------------------------------------------------


def cut(text: str, limit: int, path: str, repairs: Repairs) -> str:
    """`text` at most `limit` characters: cut, its last character the marker "…", and said."""
    if len(text) <= limit:
        return text
    repairs.add(path, f"cut from {len(text)} to {limit} characters (ends with …)")
    return text[: limit - 1] + "…"


# --- a payload too large: cut its longest strings -----------------------------------------------

TRUNCATED = "…[truncated {} characters]"
MIN_STRING_CAP = 1024


def fit(payload: dict, limit: int, repairs: Repairs) -> tuple[dict, bytes] | None:
    """The payload with its longest strings cut (each ends with "…[truncated N characters]") so
    its JSON is at most `limit` bytes, and that JSON; None when even strings of MIN_STRING_CAP
    characters do not fit (the bulk is structure, not text: nothing sensible to cut).

    The cap halves from the longest string's length until the JSON fits (at most ~12 tries, each
    a walk and a dump: only paid by an event that is over the limit)."""
    lengths: list[int] = []
    _string_lengths(payload, lengths)
    if not lengths:
        return None
    cap = max(lengths) // 2
    while cap >= MIN_STRING_CAP:
        cut_paths: list[str] = []
        candidate = _cap_strings(payload, cap, "", cut_paths)
        dumped = orjson.dumps(candidate)
        if len(dumped) <= limit:
            for path in cut_paths[:MAX_MESSAGES_PER_KIND]:
                repairs.add(
                    path, f"cut to {cap} characters to fit the event limit of {limit} bytes"
                )
            if len(cut_paths) > MAX_MESSAGES_PER_KIND:
                repairs.add("", f"and {len(cut_paths) - MAX_MESSAGES_PER_KIND} more strings cut")
            return candidate, dumped
        cap //= 2
    return None


def _string_lengths(value, out: list[int]) -> None:
    if type(value) is str:
        out.append(len(value))
    elif type(value) is dict:
        for item in value.values():
            _string_lengths(item, out)
    elif type(value) is list:
        for item in value:
            _string_lengths(item, out)


def _cap_strings(value, cap: int, path: str, cut_paths: list[str]):
    if type(value) is str:
        if len(value) > cap:
            cut_paths.append(path)
            return value[:cap] + TRUNCATED.format(len(value) - cap)
        return value
    if type(value) is dict:
        return {k: _cap_strings(v, cap, join(path, k), cut_paths) for k, v in value.items()}
    if type(value) is list:
        return [_cap_strings(v, cap, join(path, i), cut_paths) for i, v in enumerate(value)]
    return value
