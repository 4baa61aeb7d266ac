"""What the dashboard tells a new user to paste: the SDKs this server speaks, and its address.

Every snippet and hint names the address the browser is on (so `PORT=8811 make run` shows :8811),
or PUBLIC_URL when it is set (a proxy in front whose public name the request does not carry).
"""

import tomllib
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest

SDK_DIR = Path(settings.BASE_DIR) / "sdk"
# The official SDK releases this server is tested against: 0.3.26 speaks the v2 REST protocol
# (tests/test_official_sdk.py); 0.4.21 speaks OpenTelemetry (tests/test_official_sdk_otlp.py) and
# needs the opentelemetry 1.44 family: 1.45 removed what its exporter reads, so it sends nothing
# (shared/protocols/agentops-otlp.md §0). Never a bare `pip install agentops`.
OFFICIAL_SDK = "agentops==0.3.26"
OFFICIAL_OTEL_SDK = "agentops==0.4.21"
_OTEL_1_44 = ("api", "sdk", "proto", "exporter-otlp-proto-common", "exporter-otlp-proto-http")
OFFICIAL_OTEL_PINS = " ".join(
    [f"opentelemetry-{name}==1.44.0" for name in _OTEL_1_44]
    + [f"opentelemetry-{name}==0.65b0" for name in ("instrumentation", "semantic-conventions")]
)


def endpoint(request: HttpRequest) -> str:
    """The base URL SDKs should send to, without a trailing slash (e.g. http://127.0.0.1:8811)."""
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


@cache
def our_sdk() -> dict:
    """{"name", "version", "install"} of the SDK in sdk/, installable from this checkout."""
    try:
        project = tomllib.loads((SDK_DIR / "pyproject.toml").read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return {}
    return {
        "name": project["name"],
        "version": project["version"],
        "install": f'pip install "{SDK_DIR}"',
    }


def context(request: HttpRequest) -> dict:
    """Template context processor: `sdk_endpoint`, `our_sdk`, `official_sdk`, and the 0.4 SDK's
    `official_otel_sdk` with its `official_otel_pins`."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {
        "sdk_endpoint": endpoint(request),
        "our_sdk": our_sdk(),
        "official_sdk": OFFICIAL_SDK,
        "official_otel_sdk": OFFICIAL_OTEL_SDK,
        "official_otel_pins": OFFICIAL_OTEL_PINS,
    }
