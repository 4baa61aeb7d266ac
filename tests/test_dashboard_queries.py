"""List and drill-down pages make a fixed number of queries whatever the page size."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import trace
from tests.factories import add_event, llm, make_session, refresh_totals

NOW = timezone.now()


def url(name, *args):
    return reverse(f"dashboard:{name}", args=args)


def count_queries(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
        assert response.status_code == 200
        if response.streaming:
            b"".join(response.streaming_content)
    return len(ctx.captured_queries)


def sessions(project, n, offset=0):
    made = []
    for i in range(n):
        s = make_session(
            project, start=NOW - timedelta(minutes=offset + i), tags=(f"t{i % 3}", "all")
        )
        made.append(s)
    return made


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_session_list_queries_do_not_grow_with_rows(alice_client, project):
    sessions(project, 3)
    few = count_queries(alice_client, url("sessions", project.slug))
    few_filtered = count_queries(alice_client, url("sessions", project.slug) + "?tag=all&model=x")
    sessions(project, 60, offset=10)
    many = count_queries(alice_client, url("sessions", project.slug))
    many_filtered = count_queries(alice_client, url("sessions", project.slug) + "?tag=all&model=x")
    # auth session + user, membership, switcher, rows, their tags, capped count, model choices (2).
    assert few == many == 9
    assert few_filtered == many_filtered


def test_drill_down_queries_do_not_grow_with_events(alice_client, project):
    s = make_session(project, start=NOW - timedelta(hours=1), tags=("a", "b"))

    def add(n):
        for i in range(n):
            t = add_event(s, "tools", at=s.init_timestamp + timedelta(seconds=i), name="tool")
            add_event(
                s, "errors", at=s.init_timestamp + timedelta(seconds=i), trigger_event_id=t.id
            )
            llm(s, at=s.init_timestamp + timedelta(seconds=i))
        refresh_totals(s)

    add(2)
    few = count_queries(alice_client, url("session", project.slug, s.id))
    add(30)
    many = count_queries(alice_client, url("session", project.slug, s.id))
    # auth session + user, membership, switcher, session, tags, event page (its keys, then
    # its rows), trigger events, the events' time span (first, last, clock-skewed).
    assert few == many == 10
    errors = url("session", project.slug, s.id) + "?type=errors"
    errors_few = count_queries(alice_client, errors)
    timeline_few = count_queries(alice_client, url("session_timeline", project.slug, s.id))
    trace._KEPT.clear()  # a tree this process built before is reused: count a cold one
    tree_few = count_queries(alice_client, url("session_tree", project.slug, s.id))
    status_few = count_queries(alice_client, url("session_status", project.slug, s.id))
    add(5)
    assert count_queries(alice_client, url("session_timeline", project.slug, s.id)) == timeline_few
    # The Errors tab numbers its events among all of them: one more query (a window).
    assert count_queries(alice_client, errors) == errors_few == 10
    # auth session + user, membership, session, tags, agents, events (the last one only when
    # this process has not built the same tree yet).
    trace._KEPT.clear()
    assert count_queries(alice_client, url("session_tree", project.slug, s.id)) == tree_few == 7
    assert count_queries(alice_client, url("session_tree", project.slug, s.id)) == 6
    assert count_queries(alice_client, url("session_status", project.slug, s.id)) == status_few


def test_overview_and_tags_queries_are_fixed(alice_client, project):
    sessions(project, 3)
    overview_few = count_queries(alice_client, url("overview", project.slug))
    tags_few = count_queries(alice_client, url("tags", project.slug))
    sessions(project, 40, offset=10)
    assert count_queries(alice_client, url("overview", project.slug)) == overview_few
    assert count_queries(alice_client, url("tags", project.slug)) == tags_few
