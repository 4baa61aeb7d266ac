"""Figures the reliability tests measured (examples tried, events sent and stored, faults
injected), printed at the end of the run by reliability/conftest.py and kept in
reliability/.figures.json for docs/reliability.md and the CI log."""

import json
import threading
from collections import Counter
from pathlib import Path

PATH = Path(__file__).resolve().parent / ".figures.json"
_lock = threading.Lock()
counts: Counter = Counter()
notes: dict[str, str] = {}


def add(name: str, n: int = 1) -> None:
    with _lock:
        counts[name] += n


def note(name: str, value) -> None:
    with _lock:
        notes[name] = str(value)


def dump() -> str:
    lines = [f"{name}: {value}" for name, value in sorted(counts.items())]
    lines += [f"{name}: {value}" for name, value in sorted(notes.items())]
    PATH.write_text(json.dumps({"counts": dict(counts), "notes": notes}, indent=2))
    return "\n".join(lines)
