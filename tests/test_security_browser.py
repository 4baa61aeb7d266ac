"""Agent content is rendered as text everywhere, in a real browser: markup sent through the v2 API
in tags, tool names, params, returns, error details, the end reason and completions never runs.

(tests/test_browser_dashboard.py proves it for a <script> in an LLM prompt in the chat view; this
covers every other field an agent controls that the dashboard shows, sent through the API.)
"""

import uuid

import pytest

from tests.test_browser_dashboard import browser_page
from tests.v2 import T0, event, iso, llm, post, send

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    "<script>window.pwned=(window.pwned||0)+1</script>",
    '<img src=x onerror="window.pwned=(window.pwned||0)+1">',
    '"><svg onload="window.pwned=(window.pwned||0)+1">',
    "javascript:window.pwned=1",
]
EVIL = " ".join(PAYLOADS)
# What Markdown could turn into markup: links and images with script URLs, raw HTML blocks.
MARKDOWN_EVIL = (
    "[click](javascript:window.pwned=1) ![i](javascript:window.pwned=1) "
    '<a href="javascript:window.pwned=1">a</a>\n\n<div onclick="window.pwned=1">d</div>\n\n'
    "```html\n<script>window.pwned=1</script>\n```\n" + EVIL
)


def test_markup_in_any_agent_field_is_shown_as_text_and_never_runs(
    browser_page, live_server, client, api_key, alice, project
):
    page, errors, _ = browser_page
    sid = str(uuid.uuid4())
    created = post(
        client,
        "/v2/create_session",
        {"session": {"session_id": sid, "init_timestamp": iso(T0),
                     "tags": [p[:200] for p in PAYLOADS],
                     "host_env": {"OS": {"OS": EVIL, "Hostname": EVIL},
                                  "SDK": {"Python Version": EVIL}}}},
        key=api_key,
    )  # fmt: skip
    jwt = created.json()["jwt"]
    agent_id = str(uuid.uuid4())
    named = post(client, "/v2/create_agent", {"id": agent_id, "name": PAYLOADS[1]}, jwt=jwt)
    assert named.status_code == 200
    tool = event("tools", name=PAYLOADS[1][:200], params={"q": EVIL}, returns=EVIL,
                 agent_id=agent_id)  # fmt: skip
    system = {"role": "system", "content": MARKDOWN_EVIL}
    send(
        client,
        jwt,
        [
            llm(
                prompt=[system, {"role": "user", "content": EVIL}],
                agent_id=agent_id,
                completion={"role": "assistant", "content": MARKDOWN_EVIL},
                model=PAYLOADS[2],
            ),
            llm(prompt=[system, {"role": "user", "content": MARKDOWN_EVIL}], agent_id=agent_id),
            tool,
            event(
                "actions",
                action_type=PAYLOADS[0],
                params={"x": EVIL},
                logs=EVIL,
                screenshot="javascript:window.pwned=1",
            ),
            event(
                "actions",
                action_type="svg shot",
                screenshot="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
            ),
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
                     "end_state_reason": "Traceback:\n" + EVIL,
                     "video": "javascript:window.pwned=1"}},
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
    # The trace view: every row opened and selected, its detail rendered beside it.
    page.wait_for_selector("#tree[data-ready='1']")
    for toggle in page.locator(".trow[aria-expanded='false'] .toggle").all():
        toggle.click()
    page.wait_for_timeout(300)
    for row in page.locator(".trow").all():
        row.click()
        key = row.get_attribute("data-key")
        if row.get_attribute("data-kind") != "agent":
            page.wait_for_selector(f"#detail[data-shown='{key}']")
        assert page.evaluate("window.pwned") is None, key
    assert PAYLOADS[1] in page.locator("#tree").inner_text()  # the agent's name, as text
    page.locator("#waterfall[data-ready='1']").wait_for()
    page.locator("details.reason summary").click()
    page.locator("details.hostenv summary").first.click()
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x], svg[onload], div[onclick]").count() == 0
    scripted = "[href^='javascript:'], [src^='javascript:'], img[src^='data:image/svg']"
    assert page.locator(scripted).count() == 0
    assert EVIL in page.locator(".hostsummary").inner_text()
    body = page.locator("body").inner_text()
    assert PAYLOADS[0] in body  # shown, as text
    assert "<img src=x onerror=" in body
    assert page.locator("a[href^='javascript:']").count() == 0
    assert not errors, errors
