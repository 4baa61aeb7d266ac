"""The replica router's rules, in-process, on both engines (agentops_site/db_router.py).

The replica itself, for real, is tests/test_replica.py (a streaming standby under gunicorn);
these pin what holds with or without one: nothing changes without DATABASE_REPLICA_URL, login
tables are never read from a replica, writes never go to one.
"""

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session as LoginSession
from django.db import connections

from agentops_site import db_router
from agentops_site.db_router import ReplicaRouter
from events.models import Event
from projects.models import Project
from sessions.models import Session


def test_reads_outside_a_marked_request_go_to_the_primary():
    router = ReplicaRouter()
    assert router.db_for_read(Event) == "default"
    assert router.db_for_read(Session) == "default"


def test_a_marked_request_reads_data_from_the_replica_and_logins_from_the_primary():
    router = ReplicaRouter()
    token = db_router._reads_on_replica.set(True)
    try:
        assert router.db_for_read(Event) == "replica"
        assert router.db_for_read(Session) == "replica"
        assert router.db_for_read(Project) == "replica"
        assert router.db_for_read(get_user_model()) == "default"
        assert router.db_for_read(LoginSession) == "default"
        assert router.db_for_write(Event) == "default"
    finally:
        db_router._reads_on_replica.reset(token)
    assert not db_router.reading_replica()


def test_only_the_primary_is_migrated():
    router = ReplicaRouter()
    assert router.allow_migrate("default", "events") is True
    assert router.allow_migrate("replica", "events") is False


def test_without_a_replica_dashboard_pages_and_exports_read_the_primary(client, alice, project):
    assert "replica" not in connections.settings
    client.force_login(alice)
    overview = client.get(f"/p/{project.slug}/")
    assert overview.status_code == 200
    export = client.get(f"/p/{project.slug}/sessions/export.csv")
    assert export.status_code == 200
    b"".join(export.streaming_content)
    # No write position is noted after a write: without a replica there is nothing to wait for.
    created = client.post("/projects/new", {"name": "Gamma"})
    assert created.status_code == 302
    assert db_router.WROTE_AT_LSN not in client.session
