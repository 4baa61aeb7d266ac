"""The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by Playwright):
sign in, overview charts, tag filter, session drill-down with waterfall and chat view,
key create and revoke, an export download."""

import os
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from django.utils import timezone

from projects.models import ApiKey
from tests.factories import add_event, llm, make_session, refresh_totals

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def require_chromium() -> None:
    """Skip (with the reason) when Debian's Chromium is missing, unless REQUIRE_BROWSER=1 (CI's
    .ci/run installs it and sets that): then a missing browser fails the test."""
    if Path(CHROMIUM).exists():
        return
    message = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message + ", and REQUIRE_BROWSER=1")
    pytest.skip(message)


@pytest.fixture
def browser_page(live_server):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are ordinary synchronous calls, so let Django allow them.
    require_chromium()
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Console errors too: a failed resource (a 404 favicon, a missing script) shows there.
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        # Every request must stay on our own server: no CDN, no outside network.
        outside: list[str] = []
        # (A blob: URL made by one of our pages is on-host too: Redoc runs its worker from one.
        # A request our Content-Security-Policy refused never left the browser: not counted.)
        own = (live_server.url, f"blob:{live_server.url}/")
        page.on(
            "request",
            lambda req: None if req.url.startswith(own) else outside.append(req.url),
        )
        page.on(
            "requestfailed",
            lambda req: (
                outside.remove(req.url) if req.failure == "csp" and req.url in outside else None
            ),
        )
        page.set_default_timeout(15_000)
        yield page, errors, outside
        context.close()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def seed(project):
    now = timezone.now()
    tagged = make_session(
        project,
        start=now - timedelta(hours=1),
        end_state="Fail",
        reason="tool crashed",
        tags=("checkout", "prod"),
    )
    llm(
        tagged,
        at=tagged.init_timestamp + timedelta(seconds=1),
        model="gpt-4o",
        prompt=[
            {"role": "system", "content": "You are a shop assistant."},
            {"role": "user", "content": "<script>window.pwned=1</script>Where is my order?"},
        ],
        completion={"role": "assistant", "content": "Your order ships tomorrow."},
    )
    tool = add_event(
        tagged,
        "tools",
        at=tagged.init_timestamp + timedelta(seconds=3),
        name="lookup_order",
        payload={"params": {"order_id": "A-1"}, "returns": {"status": "shipped"}},
    )
    add_event(
        tagged,
        "errors",
        at=tagged.init_timestamp + timedelta(seconds=4),
        name="KeyError",
        trigger_event_id=tool.id,
        payload={"logs": "Traceback (most recent call last):\nKeyError: 'sku'"},
    )
    refresh_totals(tagged)
    other = make_session(project, start=now - timedelta(hours=2), tags=("dev",))
    llm(other, at=other.init_timestamp, model="claude-3-5-sonnet-20241022")
    refresh_totals(other)
    return tagged, other


def test_a_team_member_walks_through_the_dashboard(browser_page, live_server, alice, project):
    page, errors, outside = browser_page
    tagged, _ = seed(project)
    base = live_server.url

    # Sign in.
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/p/{project.slug}/")

    # The overview draws its Plotly charts with the plotly.js we serve.
    page.wait_for_selector("#chart-sessions .main-svg")
    page.wait_for_selector("#chart-models .main-svg")
    assert page.locator("[data-stat=sessions]").inner_text() == "2"

    # The session list, filtered by clicking a tag.
    page.click("nav.mainnav >> text=Sessions")
    page.wait_for_selector("table.sessions")
    assert page.locator("table.sessions tbody tr").count() == 2
    page.click("table.sessions a.tag >> text=checkout")
    page.wait_for_url("**/sessions/?tag=checkout")
    assert page.locator("table.sessions tbody tr").count() == 1
    assert page.locator(".chip").inner_text().startswith("checkout")

    # The drill-down: waterfall (one trace per event type) and the chat view.
    page.click("a.session-link")
    page.wait_for_url(f"**/sessions/{tagged.id}/")
    page.wait_for_selector("#waterfall[data-ready='1'] .main-svg")
    assert page.locator("#waterfall").get_attribute("data-traces") == "3"
    chat = page.locator("article.event.llms .chat")
    assert "You are a shop assistant." in chat.inner_text()
    assert "<script>window.pwned=1</script>Where is my order?" in chat.inner_text()
    assert "Your order ships tomorrow." in chat.inner_text()
    assert page.evaluate("window.pwned") is None  # shown as text, never run
    # The traceback is folded, its last line (the exception) in the summary.
    traceback = page.locator("article.event.errors details.traceback")
    assert "KeyError: 'sku'" in traceback.locator("summary").inner_text()
    traceback.locator("summary").click()
    assert "KeyError: 'sku'" in traceback.locator("pre.traceback").inner_text()
    # The error links to the tool call that triggered it.
    page.click("article.event.errors .trigger a")
    page.wait_for_selector(f"#event-{page_event_id(tagged, 'tools')}.focused")

    # Download the session as JSON (the export API's shape).
    with page.expect_download() as info:
        page.click("a[data-download=json]")
    exported = orjson.loads(Path(info.value.path()).read_bytes())
    assert exported["session"]["session_id"] == str(tagged.id)
    assert len(exported["llms"]) == 1 and len(exported["errors"]) == 1

    # Settings: create a key (shown once, with a copy button), then revoke it after confirming.
    page.click("nav.mainnav >> text=Settings")
    page.fill("input[name=label]", "browser key")
    page.click("button:has-text('Create key')")
    raw = page.input_value("#new-key-value")
    assert len(raw) == 36
    page.click("button[data-copy]")
    page.wait_for_selector("button[data-copy]:has-text('Copied')")
    key = ApiKey.objects.get(label="browser key")
    assert key.prefix == raw[:8] and key.revoked_at is None
    page.goto(f"{base}/p/{project.slug}/settings/")
    page.click(f"tr[data-key='{key.prefix}'] a:has-text('Revoke')")
    page.click("button:has-text('Revoke key')")
    page.wait_for_selector(f"tr[data-key='{key.prefix}'].revoked")
    key.refresh_from_db()
    assert key.revoked_at is not None

    assert errors == []
    assert outside == []


def page_event_id(session, event_type):
    return session.events.get(event_type=event_type).id


def test_the_list_and_overview_work_at_phone_width(browser_page, live_server, alice, project):
    page, errors, _ = browser_page
    seed(project)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector("#chart-sessions .main-svg")
    # Nothing but the table's own scroller is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"{live_server.url}/p/{project.slug}/sessions/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
