"""The official agentops SDKs, unchanged, each in a virtual environment of its own.

They share the import name `agentops` with our SDK, so they cannot live in the project's venv.
Each venv is created once and cached under .cache/ (keyed by the pinned versions):

- 0.3.26, the last with the v2 session protocol (tests/test_official_sdk.py);
- 0.4.21, an OpenTelemetry SDK (tests/test_official_sdk_otlp.py), with the opentelemetry 1.44.0
  family it needs (1.45 removed the exporter attributes its AuthenticatedOTLPExporter reads: no
  span ever leaves the process, shared/protocols/agentops-otlp.md §0), the real `openai` client
  its instrumentation wraps, and the plain OTel SDK + OTLP/HTTP exporter for the tests that send
  spans without agentops.
"""

import fcntl
import os
import subprocess
import sys
from pathlib import Path

OFFICIAL_VERSION = "0.3.26"
OTLP_VERSION = "0.4.21"
OTEL_VERSION = "1.44.0"
OTEL_CONTRIB_VERSION = "0.65b0"
ROOT = Path(__file__).resolve().parent.parent

PINS = {
    OFFICIAL_VERSION: [f"agentops=={OFFICIAL_VERSION}"],
    OTLP_VERSION: [
        f"agentops=={OTLP_VERSION}",
        *(
            f"opentelemetry-{name}=={OTEL_VERSION}"
            for name in (
                "api",
                "sdk",
                "proto",
                "exporter-otlp-proto-common",
                "exporter-otlp-proto-http",
            )
        ),
        f"opentelemetry-instrumentation=={OTEL_CONTRIB_VERSION}",
        f"opentelemetry-semantic-conventions=={OTEL_CONTRIB_VERSION}",
        "openai==3.57.0",
    ],
}


def official_sdk_python(version: str = OFFICIAL_VERSION) -> Path:
    """Path of a python that imports the official agentops SDK `version`; creates its venv on
    first use (pip from the configured index; minutes, once)."""
    venv = ROOT / ".cache" / f"official-agentops-{version}"
    python = venv / "bin" / "python"
    marker = venv / ".ready"
    pins = " ".join(PINS[version])
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".official-sdk-{version}.lock", "w") as lock:
        # Several test processes may ask at once; one builds, the others wait.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists() or marker.read_text() != pins:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *PINS[version]], check=True
            )
            marker.write_text(pins)
    return python


def run_official(
    script: str,
    *,
    env: dict[str, str],
    timeout: float = 120,
    version: str = OFFICIAL_VERSION,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run `script` with the official SDK's python; raises with its output if it fails (unless
    check=False: a test of a crashing agent reads the result itself)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENTOPS_", "VIRTUAL_ENV", "OTEL_", "OPENAI_"))
    }
    result = subprocess.run(
        [str(official_sdk_python(version)), "-c", script],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"official SDK script failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result
