"""Agent content is rendered as text everywhere, in a real browser: markup sent through the v2 API
in tags, tool names, params, returns, error details, the end reason and completions never runs.

(tests/test_browser_dashboard.py proves it for a <script> in an LLM prompt in the chat view; this
covers every other field an agent controls that the dashboard shows, sent through the API.)
"""

import pytest

from tests.test_browser_dashboard import browser_page
from tests.v2 import T0, event, iso, llm, post, send, start

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    "<script>window.pwned=(window.pwned||0)+1</script>",
    '<img src=x onerror="window.pwned=(window.pwned||0)+1">',
    '"><svg onload="window.pwned=(window.pwned||0)+1">',
    "javascript:window.pwned=1",
]
EVIL = " ".join(PAYLOADS)


def test_markup_in_any_agent_field_is_shown_as_text_and_never_runs(
    browser_page, live_server, client, api_key, alice, project
):
    page, errors, _ = browser_page
    sid, jwt = start(client, api_key, tags=[p[:200] for p in PAYLOADS])
    tool = event("tools", name=PAYLOADS[1][:200], params={"q": EVIL}, returns=EVIL)
    send(
        client,
        jwt,
        [
            llm(prompt=EVIL, completion={"role": "assistant", "content": EVIL}, model=PAYLOADS[2]),
            tool,
            event("actions", action_type=PAYLOADS[0], params={"x": EVIL}, logs=EVIL),
            event(
                "errors",
                error_type=PAYLOADS[2],
                details=EVIL,
                logs=EVIL,
                code=PAYLOADS[1],
                trigger_event_id=tool["id"],
            ),
        ],
    )
    ended = post(
        client,
        "/v2/update_session",
        {"session": {"end_timestamp": iso(T0), "end_state": "Fail",
                     "end_state_reason": EVIL, "video": "javascript:window.pwned=1"}},
        jwt=jwt,
    )  # fmt: skip
    assert ended.status_code in (200, 400)  # a javascript: video URL may be refused outright

    base = live_server.url
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/p/{project.slug}/")
    for path in (
        f"/p/{project.slug}/",
        f"/p/{project.slug}/sessions/",
        f"/p/{project.slug}/tags/",
        f"/p/{project.slug}/sessions/{sid}/",
    ):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.pwned") is None, path
        # No element the agent's text could have created exists.
        assert page.locator("img[src=x], svg[onload]").count() == 0, path
    body = page.locator("body").inner_text()
    assert PAYLOADS[0] in body  # shown, as text
    assert "<img src=x onerror=" in body
    assert page.locator("a[href^='javascript:']").count() == 0
    assert not errors, errors
