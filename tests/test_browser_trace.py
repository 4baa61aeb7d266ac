"""The session page's trace view in headless Chromium at 1440x900: a 2,000-event v2 session
with named agents (errors visible and one click away, rows selected without a reload, a 20k-
character prompt folded, a repeated system prompt collapsed, focus links), an OpenTelemetry
trace drawn as a tree, and a running session refreshing itself. Screenshots are kept in
.cache/screenshots/ for a person to look at."""

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from events.models import Event
from sessions.models import Agent, Session
from tests.factories import add_event, make_session, refresh_totals
from tests.test_browser_dashboard import browser_page  # noqa: F401 (fixture)
from tests.test_browser_otlp import root_trace, send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(__file__).resolve().parent.parent / ".cache" / "screenshots"
SYSTEM = "You are a careful planner. Think step by step and call tools when you need facts."
LONG_PROMPT = "# Catalog\n\n" + "\n".join(
    f"- item {i}: a line of the catalog that makes this prompt long" for i in range(360)
)  # about 20,000 characters


def big_session(project) -> tuple[Session, dict]:
    """2,000 events in 2 minutes under two named agents, 8 errors spread through them."""
    start = timezone.now() - timedelta(hours=1)
    s = make_session(project, start=start, end_state="Fail", reason="crashed",
                     duration=timedelta(minutes=2),
                     host_env={"OS": {"OS": "Linux", "OS Release": "6.1", "Hostname": "box-7"},
                               "SDK": {"Python Version": "3.12.4"}, "CPU": {"Total cores": 8},
                               "RAM": {"Total": "15.5 GB"}, "Installed Packages": {"x": "1"}})  # fmt: skip  # noqa: E501
    planner = Agent.objects.create(session=s, name="planner")
    coder = Agent.objects.create(session=s, name="coder")
    events, marks = [], {}
    for i in range(2000):
        at = start + timedelta(milliseconds=60 * i)
        agent = planner.id if i < 1000 else coder.id
        kind = ("llms", "tools", "actions")[i % 3]
        fields = {"agent_id": agent, "end_timestamp": at + timedelta(milliseconds=20 + i % 40)}
        if kind == "llms":
            prompt = [{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": LONG_PROMPT if i == 3 else f"step {i}"}]  # fmt: skip  # noqa: E501
            fields.update(model="gpt-4o", prompt_tokens=100, completion_tokens=20,
                          cost=Decimal("0.0001"), cost_source="sdk",
                          payload={"prompt": prompt, "completion": {"role": "assistant",
                                   "content": f"Step {i}:\n```python\nprint({i})\n```"}})  # fmt: skip  # noqa: E501
        else:
            fields.update(name=f"{kind[:-1]}-{i}", payload={"params": {"i": i}, "returns": "ok"})
        events.append(Event(id=uuid.uuid4(), session=s, project_id=project.id, event_type=kind,
                            init_timestamp=at, **fields))  # fmt: skip
    Event.objects.bulk_create(events)
    for j, i in enumerate(range(227, 2000, 230)[:8]):
        trigger = events[i]
        err = add_event(s, "errors", at=trigger.init_timestamp + timedelta(milliseconds=5),
                        end_timestamp=None, name=f"ToolError{j}", agent_id=trigger.agent_id,
                        trigger_event_id=trigger.id,
                        payload={"details": "failed", "logs": "Traceback (most recent call last):\n"
                                 '  File "agent.py", line 3, in run\nValueError: bad input'})  # fmt: skip  # noqa: E501
        marks.setdefault("errors", []).append(err.id)
    marks["long"] = events[3].id
    marks["deep"] = events[1500].id
    refresh_totals(s)
    return s, marks


def login(page, base, project):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/p/{project.slug}/")


def test_a_2000_event_session_as_a_tree_with_agents_errors_and_folds(
    browser_page,  # noqa: F811
    live_server,
    alice,
    project,
):
    page, errors, outside = browser_page
    s, marks = big_session(project)
    base = live_server.url
    login(page, base, project)
    page.goto(f"{base}/p/{project.slug}/sessions/{s.id}/")
    page.wait_for_selector("#tree[data-ready='1']")
    # Agents named, at the top; every error one click away in the default view.
    tops = page.locator("#tree > .trow")
    assert [tops.nth(i).locator(".tname").inner_text() for i in range(2)] == ["planner", "coder"]
    assert "4 errors" in tops.nth(0).inner_text() and "4 errors" in tops.nth(1).inner_text()
    assert page.locator("#trace-errors .error-link").count() == 8
    assert page.locator("#trace-errors").inner_text().startswith("8 errors")
    page.wait_for_selector("#waterfall[data-ready='1'] .main-svg")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "trace-2000-default.png"))

    # An error from the strip: its ancestors open, it selected and shown beside the tree,
    # under the event that triggered it, numbered as in the list.
    page.locator("#trace-errors .error-link").nth(0).click()
    first_error = str(marks["errors"][0])
    page.wait_for_selector(f"#detail[data-shown='{first_error}']")
    row = page.locator(f".trow[data-key='{first_error}']")
    assert "selected" in row.get_attribute("class") and row.get_attribute("aria-level") == "3"
    assert "ValueError: bad input" in page.locator("#detail details.traceback summary").inner_text()
    assert page.locator("#detail pre.traceback").is_visible() is False  # folded
    assert f"focus={first_error}" in page.url  # the place survives a reload
    number = row.locator(".num").inner_text()
    assert number == "#229"  # 1-based, the trigger (#228) comes just before it
    assert number in page.locator("#detail header").inner_text()

    # Select another row by clicking it: no page load, the detail follows.
    page.evaluate("window.marker = 1")
    planner_rows = page.locator(".tchildren[data-parent^='agent:'] > .trow.kind-llms")
    planner_rows.nth(1).click()
    key = planner_rows.nth(1).get_attribute("data-key")
    page.wait_for_selector(f"#detail[data-shown='{key}']")
    assert page.evaluate("window.marker") == 1
    detail = page.locator("#detail")
    # Code in completions is monospace code; the repeated system prompt is collapsed.
    assert detail.locator(".md pre code").count() >= 1
    assert (
        detail.locator("pre code")
        .evaluate("e => getComputedStyle(e).fontFamily")
        .startswith("ui-monospace")
    )

    # The 20k-character prompt, folded with "show more".
    page.goto(f"{base}/p/{project.slug}/sessions/{s.id}/?focus={marks['long']}")
    page.wait_for_selector(f"#detail[data-shown='{marks['long']}']")
    fold = page.locator("#detail .msg.role-user .text.fold")
    folded_height = fold.bounding_box()["height"]
    assert "folded" in fold.get_attribute("class") and folded_height < 250
    page.screenshot(path=str(SHOTS / "trace-2000-long-prompt.png"))
    page.locator("#detail .fold-toggle").first.click()
    assert fold.bounding_box()["height"] > 10 * folded_height

    # A deep link into the second agent, 500 rows down: opened, selected, scrolled into view.
    page.goto(f"{base}/p/{project.slug}/sessions/{s.id}/?focus={marks['deep']}")
    page.wait_for_selector(f"#tree[data-focused='{marks['deep']}']")
    deep = page.locator(f".trow[data-key='{marks['deep']}']")
    assert "selected" in deep.get_attribute("class")
    tree_box, row_box = page.locator("#tree").bounding_box(), deep.bounding_box()
    assert tree_box["y"] <= row_box["y"] <= tree_box["y"] + tree_box["height"]
    page.screenshot(path=str(SHOTS / "trace-2000-focus.png"))

    # The event list: the repeated system prompt collapsed after its first showing, the
    # Errors tab numbering its events as "All" does.
    page.goto(f"{base}/p/{project.slug}/sessions/{s.id}/#events")
    repeated = page.locator("article.event.llms details.repeated")
    assert repeated.count() >= 1
    assert "same system prompt as #1" in repeated.first.inner_text()
    page.goto(f"{base}/p/{project.slug}/sessions/{s.id}/?type=errors#events")
    assert "#229" in page.locator("article.event.errors header").first.inner_text()
    # Host environment summarised, the dump folded.
    meta = page.locator(".hostsummary").inner_text()
    assert "Linux" in meta and "3.12.4" in meta and "box-7" in meta and "15.5 GB" in meta
    assert not errors and not outside, (errors, outside)


def test_an_opentelemetry_trace_is_drawn_as_a_tree(
    browser_page,  # noqa: F811
    live_server,
    alice,
    project,
    api_key,
):
    page, errors, outside = browser_page
    base = live_server.url
    send(base, api_key, "03-new-api-decorators-and-errors.json")
    research = root_trace("03-new-api-decorators-and-errors.json", "research-run.session")
    session = Session.objects.get(pk=uuid.UUID(research))
    deepest = max(
        Event.objects.filter(session=session).exclude(event_type="errors"),
        key=lambda e: len(e.payload.get("otel", {}).get("name", "")) * 0 + _depth(session, e),
    )
    login(page, base, project)
    page.goto(f"{base}/sessions?trace_id={research}")
    page.wait_for_selector("#tree[data-ready='1']")
    page.locator("#tree > .trow").first.click()
    page.locator("#tree > .trow .toggle").first.click()
    page.wait_for_selector(".tchildren .trow")
    page.goto(f"{base}/p/{project.slug}/sessions/{session.id}/?focus={deepest.id}")
    page.wait_for_selector(f"#tree[data-focused='{deepest.id}']")
    level = int(page.locator(f".trow[data-key='{deepest.id}']").get_attribute("aria-level"))
    assert level >= 3
    # The root span is the session's own: its children are top rows, not orphans.
    assert "parent span missing" not in page.locator("#tree").inner_text()
    assert page.locator(".trow[aria-expanded='true']").count() == level - 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "trace-otlp-tree.png"))
    # The exception the tool raised: one error, opened under the span that raised it.
    page.locator("#trace-errors .error-link").first.click()
    page.wait_for_selector(".trow.is-error.selected")
    error = page.locator(".trow.is-error.selected")
    parent = page.locator(".tchildren", has=error).last.get_attribute("data-parent")
    assert page.locator(f".trow[data-key='{parent}']").get_attribute("data-kind") == "tools"
    # Its detail replaces the row shown before, beside the tree: the exception and its message.
    page.wait_for_selector(f"#detail[data-shown='{error.get_attribute('data-key')}']")
    assert "ValueError" in page.locator("#detail").inner_text()
    page.screenshot(path=str(SHOTS / "trace-otlp-error.png"))
    # A link to an event that is not in this session opens the trace at its top and says why.
    elsewhere = uuid.uuid4()
    before = len(errors)
    page.goto(f"{base}/p/{project.slug}/sessions/{session.id}/?focus={elsewhere}")
    page.wait_for_selector(f"#detail[data-focus-missing='{elsewhere}']")
    assert "not in this session" in page.locator("#detail").inner_text()
    assert page.locator("#tree > .trow").count() >= 1
    # The browser logs the refused look-up (one 404); any other error still fails the test.
    errors[before:] = [e for e in errors[before:] if "status of 404" not in e]
    assert not errors and not outside, (errors, outside)


def _depth(session, event) -> int:
    depth, parent = 0, event.parent_span_id
    spans = {e.span_id: e.parent_span_id for e in Event.objects.filter(session=session)}
    while parent in spans and depth < 50:
        depth, parent = depth + 1, spans[parent]
    return depth


def test_a_running_session_ticks_and_refreshes_until_it_ends(
    browser_page,  # noqa: F811
    live_server,
    alice,
    project,
):
    page, errors, outside = browser_page
    s = make_session(project, start=timezone.now() - timedelta(seconds=30), end_state=None)
    add_event(s, "actions", at=s.init_timestamp + timedelta(seconds=1), name="first-step")
    refresh_totals(s)
    base = live_server.url
    login(page, base, project)
    page.goto(f"{base}/p/{project.slug}/sessions/{s.id}/")
    page.wait_for_selector("#tree[data-ready='1']")
    assert page.locator("#duration-card .label").text_content() == "Running for"
    assert "1 event" in page.locator("#duration-card").inner_text()
    assert "1 events" not in page.locator("body").inner_text()
    add_event(s, "tools", at=s.init_timestamp + timedelta(seconds=20), name="second-step")
    refresh_totals(s)
    page.wait_for_selector(".trow:has-text('second-step')", timeout=12_000)
    Session.objects.filter(pk=s.pk).update(end_timestamp=timezone.now(), end_state="Success")
    page.wait_for_function(
        "document.querySelector('#duration-card .label').textContent === 'Duration'",
        timeout=12_000,
    )
    assert "2 events" in page.locator("#duration-card").inner_text()
    assert not errors and not outside, (errors, outside)
