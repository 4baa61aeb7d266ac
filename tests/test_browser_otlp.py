"""OTLP sessions in the dashboard, in headless Chromium: the link agentops 0.4 prints
(/sessions?trace_id=<hex>), the session page's trace view, the uploaded log,
and the overview's hint for a key that fetched tokens but sent no spans. Screenshots are kept
in .cache/screenshots/ for a person to look at."""

from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from projects.models import ApiKey
from tests.otlp_captures import captured_spans, to_protobuf, trace_requests
from tests.test_browser_dashboard import browser_page  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"


def send(base, api_key, name):
    token = requests.post(f"{base}/v3/auth/token", json={"api_key": api_key}, timeout=10).json()[
        "token"
    ]
    for request in trace_requests(name):
        response = requests.post(
            f"{base}/v1/traces",
            data=to_protobuf(request).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 200
    return token


def root_trace(name, span_name):
    return next(
        s["trace_id"]
        for s in captured_spans(name)
        if s["name"] == span_name and not s["parent_span_id"]
    )


def test_otlp_sessions_in_the_dashboard(browser_page, live_server, alice, project, api_key):  # noqa: F811
    page, errors, outside = browser_page
    base = live_server.url
    token = send(base, api_key, "03-new-api-decorators-and-errors.json")
    send(base, api_key, "04-llm-openai-chat.json")
    send(base, api_key, "05-cross-process-traceparent.json")
    research = root_trace("03-new-api-decorators-and-errors.json", "research-run.session")
    log = requests.post(
        f"{base}/v4/logs/upload/",
        json={"body": "2026-11-30 10:00:00,001 - INFO - planning the research\n"},
        headers={"Authorization": f"Bearer {token}", "Trace-Id": str(int(research, 16))},
        timeout=10,
    )
    assert log.status_code == 200
    ApiKey.objects.update(last_token_at=timezone.now() - timedelta(minutes=10), last_span_at=None)

    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/p/{project.slug}/")
    hint = page.locator(".token-hint")
    assert "AGENTOPS_EXPORTER_ENDPOINT" in hint.inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "otlp-overview.png"), full_page=True)

    # The link the SDK prints, with the trace id as 32 hex digits.
    page.goto(f"{base}/sessions?trace_id={research}")
    page.wait_for_url(f"{base}/p/{project.slug}/sessions/**")
    assert "Success" in page.locator(".meta").inner_text()
    assert research in page.locator(".meta").inner_text()
    assert "planning the research" in page.locator(".logs").inner_text()
    # The trace view: Researcher.agent under the root; research.task under it; its tools one
    # deeper (tests/test_browser_trace.py opens deeper trees).
    page.wait_for_selector("#tree[data-ready='1']")
    page.locator("#tree > .trow[aria-expanded='false'] .toggle").first.click()
    page.locator(".trow[aria-level='2'][aria-expanded='false'] .toggle").first.click()
    page.wait_for_selector(".trow[aria-level='3']")
    page.screenshot(path=str(SHOTS / "otlp-session-new-api.png"), full_page=True)

    llm = root_trace("04-llm-openai-chat.json", "llm-run.session")
    page.goto(f"{base}/p/{project.slug}/sessions/{llm}/")
    assert page.locator("article.event.llms").count() == 2
    page.screenshot(path=str(SHOTS / "otlp-session-llm.png"), full_page=True)

    page.goto(f"{base}/p/{project.slug}/sessions/")
    page.screenshot(path=str(SHOTS / "otlp-session-list.png"), full_page=True)
    assert not errors and not outside
