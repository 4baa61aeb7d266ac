"""Finding sessions in headless Chromium (issue 17): the list's search, duration sort and
totals; the overview at 1440 px with 10 models; an invalid filter said on the page; deleting a
project by typing its name. Screenshots go to the test's tmp dir (printed) to be looked at."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from events.search import SETTLE, index_new_events
from projects.keys import issue_key
from projects.models import Project
from sessions.models import Session
from tests.factories import llm, make_session, refresh_totals
from tests.test_browser_dashboard import browser_page  # noqa: F401 (a fixture)
from tests.v2 import event, iso, post, send, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRACEBACK = 'Traceback (most recent call last):\n  File "a.py", line 1\nValueError: no plan\n'


def sign_in(page, base, project):
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/p/{project.slug}/")


def ingest_three_sessions(alice, project):
    """Through the real v2 endpoints: a 5-minute crashed session asking about Reykjavik, a
    1-minute one with a tool call, a 20-minute one with an unpriced model."""
    key = issue_key(project=project, label="b", created_by=alice).raw
    client = Client()
    now = timezone.now().replace(microsecond=0)
    made = {}
    for name, minutes, events, state, reason in (
        (
            "reykjavik",
            5,
            [{"prompt": "Book a flight to Reykjavik", "cost": "0.40"}],
            "Fail",
            TRACEBACK,
        ),
        ("tool", 1, [], "Success", ""),
        ("long", 20, [{"model": "house-model-unpriced"}], "Success", ""),
    ):
        at = now - timedelta(hours=1)
        sid, jwt = start(client, key, at=at)
        batch = [
            {
                "id": str(uuid.uuid4()),
                "event_type": "llms",
                "init_timestamp": iso(at),
                "end_timestamp": iso(at + timedelta(seconds=2)),
                "model": e.get("model", "gpt-4o"),
                "prompt": e.get("prompt", "hello"),
                "completion": "ok",
                "prompt_tokens": 100,
                "completion_tokens": 20,
                **({"cost": e["cost"]} if "cost" in e else {}),
            }
            for e in events
        ]
        if name == "tool":
            batch.append(event("tools", at=at, name="lookup_order_status"))
        send(client, jwt, batch)
        body = {
            "session": {
                "end_timestamp": iso(at + timedelta(minutes=minutes)),
                "end_state": state,
                "end_state_reason": reason,
            }
        }
        assert post(client, "/v2/update_session", body, jwt=jwt).status_code == 200
        made[name] = sid
    index_new_events(now=timezone.now() + SETTLE + timedelta(seconds=1))
    return made


def test_the_list_searches_sorts_by_duration_and_sums_the_filtered_set(
    browser_page,  # noqa: F811
    live_server,
    alice,
    project,
    tmp_path,
):
    page, errors, outside = browser_page
    made = ingest_three_sessions(alice, project)
    base = live_server.url
    sign_in(page, base, project)
    page.set_viewport_size({"width": 1440, "height": 900})

    page.goto(f"{base}/p/{project.slug}/sessions/")
    totals = page.locator("[data-totals]").inner_text()
    # 3 sessions, the known cost ($0.40 sent by the SDK) beside the unpriced model's unknown
    # part, the tokens of the two LLM calls, the crash counted as the one error.
    assert totals == "3 sessions · $0.40 + unknown · 240 tokens · 1 error"

    # Search reaches a prompt.
    page.fill("input[name=q]", "reykjavik")
    page.click("button:has-text('Apply filters')")
    page.wait_for_url("**q=reykjavik**")
    rows = page.locator("table.sessions tbody tr")
    assert rows.count() == 1
    assert made["reykjavik"][:8] in rows.first.inner_text()
    assert "1 session" in page.locator("[data-totals]").inner_text()
    assert "1 error" in page.locator("[data-totals]").inner_text()
    # ...and a tool name.
    page.fill("input[name=q]", "lookup_order")
    page.click("button:has-text('Apply filters')")
    page.wait_for_url("**q=lookup_order**")
    assert page.locator("table.sessions tbody tr").count() == 1
    assert made["tool"][:8] in page.locator("table.sessions tbody tr").first.inner_text()

    # Sort by duration: 20 min, 5 min, 1 min.
    page.fill("input[name=q]", "")
    page.select_option("select[name=sort]", "duration")
    page.click("button:has-text('Apply filters')")
    page.wait_for_url("**sort=duration**")
    order = [
        page.locator("table.sessions tbody tr").nth(i).locator(".mono").inner_text()
        for i in range(3)
    ]
    assert order == [made[k][:8] for k in ("long", "reykjavik", "tool")]
    shot = tmp_path / "sessions-by-duration.png"
    page.screenshot(path=str(shot), full_page=True)
    print("screenshot:", shot)
    assert errors == [] and outside == []


def test_an_invalid_filter_is_said_on_the_page(browser_page, live_server, alice, project):  # noqa: F811
    page, errors, _ = browser_page
    make_session(project, start=timezone.now() - timedelta(hours=1))
    base = live_server.url
    sign_in(page, base, project)
    page.goto(f"{base}/p/{project.slug}/sessions/?end_state=Crashed&has_errors=maybe")
    message = page.locator("[data-filter-errors]").inner_text()
    assert "end_state: Use one of Success, Fail, Indeterminate, running." in message
    assert "has_errors: Use true or false." in message
    # The valid rest applies: the session is listed.
    assert page.locator("table.sessions tbody tr").count() == 1
    assert errors == []


LONG_MODELS = [
    "gpt-4o-2024-11-20",
    "gpt-4o-mini-2024-07-18",
    "claude-3-5-sonnet-20241022",
    "claude-3-5-haiku-20241022",
    "gemini-1.5-pro-002",
    "gemini-1.5-flash-8b-exp-0924",
    "mistral-large-2411",
    "llama-3.1-405b-instruct-turbo",
    "o1-preview-2024-09-12",
    "my-company/finetuned-support-agent-v7",
]


def test_the_overview_reads_at_1440px_with_ten_models(
    browser_page,  # noqa: F811
    live_server,
    alice,
    project,
    tmp_path,
):
    page, errors, _ = browser_page
    now = timezone.now()
    for n, model in enumerate(LONG_MODELS):
        s = make_session(project, start=now - timedelta(hours=2 + n))
        llm(s, at=s.init_timestamp, model=model, cost=str(Decimal("0.0702") * (n + 1)))
        refresh_totals(s)
    base = live_server.url
    sign_in(page, base, project)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{base}/p/{project.slug}/")
    page.wait_for_selector("#chart-models .main-svg")
    page.screenshot(path=str(tmp_path / "overview-1440.png"), full_page=True)
    print("screenshot:", tmp_path / "overview-1440.png")
    chart = page.locator("#chart-models").bounding_box()
    # Every model name is drawn whole, inside the chart.
    labels = page.locator("#chart-models .ytick text")
    texts = labels.evaluate_all("els => els.map(e => e.textContent.trim())")
    assert sorted(texts) == sorted(LONG_MODELS)
    for i in range(labels.count()):
        box = labels.nth(i).bounding_box()
        assert box["x"] >= chart["x"] - 1 and box["x"] + box["width"] <= chart["x"] + chart["width"]
    # The plot keeps most of the width: the legend sits below it, not beside it.
    plot = page.locator("#chart-models .nsewdrag").first.bounding_box()
    assert plot["width"] > 0.5 * chart["width"]
    legend = page.locator("#chart-models .legend").bounding_box()
    assert plot["y"] + plot["height"] <= legend["y"]
    assert legend["y"] + legend["height"] <= chart["y"] + chart["height"]  # drawn, not cut off
    # USD ticks at round steps.
    usd = page.locator("#chart-models .x2tick text").evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    assert usd[:3] == ["$0.00", "$0.20", "$0.40"], usd
    shot = tmp_path / "overview-1440-ten-models.png"
    page.locator("#chart-models").screenshot(path=str(shot))
    page.screenshot(path=str(tmp_path / "overview-1440.png"), full_page=True)
    print("screenshot:", shot)
    assert errors == []


def test_an_owner_deletes_a_project_after_typing_its_name(
    browser_page,  # noqa: F811
    live_server,
    alice,
    project,
):
    page, errors, _ = browser_page
    s = make_session(project, start=timezone.now() - timedelta(hours=1))
    base = live_server.url
    sign_in(page, base, project)
    page.goto(f"{base}/p/{project.slug}/settings/")
    page.fill("#delete-project input[name=confirm]", "alpha")  # not exactly the name
    page.click("#delete-project button:has-text('Delete project')")
    assert "exactly to delete it" in page.locator("[data-delete-error]").inner_text()
    assert Project.objects.filter(pk=project.pk).exists()
    page.fill("#delete-project input[name=confirm]", "Alpha")
    page.click("#delete-project button:has-text('Delete project')")
    page.wait_for_selector("text=Deleted Alpha: 1 session,")
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Session.objects.filter(pk=s.pk).exists()
    # The refused confirmation is answered 400 (the form again, with its message): the browser
    # logs that status, nothing else.
    assert errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
