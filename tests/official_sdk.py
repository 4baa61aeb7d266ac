"""The official agentops 0.3.26 SDK, unchanged, in a virtual environment of its own.

It shares the import name `agentops` with our SDK, so it cannot live in the project's venv.
The venv is created once and cached under .cache/ (keyed by the pinned version).
"""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

OFFICIAL_VERSION = "0.3.26"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / f"official-agentops-{OFFICIAL_VERSION}"


def official_sdk_python() -> Path:
    """Path of a python that imports the official agentops SDK; creates the venv on first use."""
    python = VENV / "bin" / "python"
    marker = VENV / ".ready"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".official-sdk.lock", "w") as lock:
        # Several test processes may ask at once; one builds, the others wait.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", f"agentops=={OFFICIAL_VERSION}"],
                check=True,
            )
            marker.write_text(OFFICIAL_VERSION)
    return python


def run_official(
    script: str, *, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `script` with the official SDK's python; raises with its output if it fails."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTOPS_", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [str(official_sdk_python()), "-c", script],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"official SDK script failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result
