"""Dashboard reads on a streaming replica, for real (agentops_site/db_router.py).

A private primary and a hot standby made from it by pg_basebackup (reliability/servers.py), our
server under gunicorn with DATABASE_URL on the primary and DATABASE_REPLICA_URL on the standby,
an SDK-shaped client ingesting over HTTP and a signed-in user reading the dashboard. Replay is
paused on the standby to show, rather than assume, which side each page reads: while paused a
dashboard page can only show what the standby had replayed.

Runs on the Postgres pass (CI's REQUIRE_POSTGRES=1), where a missing initdb or pg_basebackup is
a failure; the SQLite pass has nothing of its own to test here.
"""

import os
import re
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests

from agentops_site.db_router import LAG_NOTICE_SECONDS
from reliability.servers import (
    PG_BIN,
    PYTHON,
    ROOT,
    PrivatePostgres,
    StreamingReplica,
    base_env,
    create_project,
    gunicorn,
)

pytestmark = pytest.mark.system

ON_POSTGRES_PASS = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
if not ON_POSTGRES_PASS:
    pytest.skip("the replica test runs on the Postgres pass", allow_module_level=True)

PASSWORD = "replica-user-password-1"
LAG_NOTICE = "read replica that is catching up"


@pytest.fixture(scope="module")
def pair():
    for tool in ("initdb", "pg_ctl", "pg_basebackup"):
        assert (PG_BIN / tool).exists(), f"{PG_BIN / tool} is missing: install postgresql"
    primary = PrivatePostgres()
    replica = None
    try:
        primary.migrate_template()
        replica = StreamingReplica(primary)
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


@pytest.fixture(scope="module")
def deployment(pair, tmp_path_factory):
    primary, replica = pair
    db = "agentops_template"
    primary_url, replica_url = primary.url(db), replica.url(db)
    key = create_project(primary_url, name="Replica")
    subprocess.run(
        [
            str(PYTHON),
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model;"
            "from projects.models import Membership, Project;"
            f"u = get_user_model().objects.create_user('ana', password='{PASSWORD}');"
            "Membership.objects.create(project=Project.objects.get(name='Replica'), user=u,"
            " role=Membership.Role.OWNER)",
        ],
        cwd=ROOT,
        env=base_env(DATABASE_URL=primary_url),
        check=True,
        timeout=120,
    )
    with gunicorn(
        database_url=primary_url,
        DATABASE_REPLICA_URL=replica_url,
        workers=1,
        log_dir=tmp_path_factory.mktemp("gunicorn"),
    ) as server:
        yield server, key, primary, replica


def _signed_in(base: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = browser.post(
        f"{base}/login/",
        data={"username": "ana", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    assert done.status_code == 200 and "/login/" not in done.url, done.text[:500]
    return browser


def _csrf(browser: requests.Session, url: str) -> str:
    page = browser.get(url, timeout=10)
    assert page.status_code == 200, page.status_code
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def _ingest_session(base: str, key: str) -> tuple[str, str]:
    """One SDK-shaped session with one LLM event, through the v2 API (the primary): its id and
    session token."""
    session_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat()
    started = requests.post(
        f"{base}/v2/create_session",
        json={"session": {"session_id": session_id, "init_timestamp": now, "tags": ["replica"]}},
        headers={"X-Agentops-Api-Key": key},
        timeout=10,
    )
    assert started.status_code == 200, started.text
    jwt = started.json()["jwt"]
    _send_llm_event(base, jwt)
    return session_id, jwt


def _send_llm_event(base: str, jwt: str) -> None:
    now = datetime.now(UTC).isoformat()
    sent = requests.post(
        f"{base}/v2/create_events",
        json={
            "events": [
                {
                    "id": str(uuid.uuid4()),
                    "event_type": "llms",
                    "init_timestamp": now,
                    "end_timestamp": now,
                    "model": "gpt-4o",
                    "prompt_tokens": 10,
                    "completion_tokens": 5,
                }
            ]
        },
        headers={"Authorization": f"Bearer {jwt}"},
        timeout=10,
    )
    assert sent.status_code == 200, sent.text


def _sessions_on(pg: PrivatePostgres) -> set[str]:
    with pg.connect("agentops_template") as conn:
        return {str(r[0]) for r in conn.execute("SELECT id FROM agent_sessions_session")}


def _replica_backends(replica: StreamingReplica) -> int:
    """Client connections to our database on the standby (the server's, not this test's)."""
    with replica.connect("postgres") as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'agentops_template'"
        ).fetchone()[0]


def test_dashboard_reads_the_replica_while_ingest_writes_the_primary(deployment):
    server, key, primary, replica = deployment
    base = server.url
    browser = _signed_in(base)
    first, first_jwt = _ingest_session(base, key)
    replica.wait_caught_up(primary)
    sessions_page = f"{base}/p/replica/sessions/"
    page = browser.get(sessions_page, timeout=10).text
    assert first in page and LAG_NOTICE not in page
    # The page was read over a connection to the standby (the server keeps it for CONN_MAX_AGE).
    assert _replica_backends(replica) >= 1

    replica.replay_paused(True)
    try:
        lagging, _ = _ingest_session(base, key)
        # A second event in the first session: the session export (a COPY on Postgres) too.
        _send_llm_event(base, first_jwt)
        # Ingest wrote the primary, and the API that reads what it just wrote reads the primary:
        assert lagging in _sessions_on(primary)
        assert lagging not in _sessions_on(replica)
        stats = requests.get(
            f"{base}/v2/sessions/{lagging}/stats", headers={"X-Agentops-Api-Key": key}, timeout=10
        )
        assert stats.status_code == 200 and stats.json()["events"], stats.text
        # What a user sees during lag: the dashboard as the standby has it, the new session
        # missing from the list and its page not found yet; the older one still there.
        page = browser.get(sessions_page, timeout=10).text
        assert first in page and lagging not in page
        # Once it has been behind for a moment, the page says so (and as of when).
        time.sleep(LAG_NOTICE_SECONDS + 0.5)
        page = browser.get(sessions_page, timeout=10).text
        assert LAG_NOTICE in page and lagging not in page
        assert browser.get(f"{sessions_page}{lagging}/", timeout=10).status_code == 404
        export = browser.get(f"{base}/p/replica/sessions/export.jsonl", timeout=10)
        assert first in export.text and lagging not in export.text
        first_export = browser.get(f"{sessions_page}{first}/export.json", timeout=10).json()
        assert len(first_export["llms"]) == 1
    finally:
        replica.replay_paused(False)

    # ...and then it catches up, with nothing lost.
    replica.wait_caught_up(primary)
    page = browser.get(sessions_page, timeout=10).text
    assert lagging in page and LAG_NOTICE not in page
    detail = browser.get(f"{sessions_page}{lagging}/", timeout=10)
    assert detail.status_code == 200 and "gpt-4o" in detail.text
    session_export = browser.get(f"{sessions_page}{lagging}/export.json", timeout=10).json()
    assert len(session_export["llms"]) == 1
    first_export = browser.get(f"{sessions_page}{first}/export.json", timeout=10).json()
    assert len(first_export["llms"]) == 2


def test_a_user_sees_their_own_write_while_the_replica_lags(deployment):
    server, _, primary, replica = deployment
    base = server.url
    browser = _signed_in(base)
    # The same user in a second browser, which will write nothing: the marker is per login.
    elsewhere = _signed_in(base)
    replica.wait_caught_up(primary)
    assert elsewhere.get(f"{base}/p/replica/", timeout=10).status_code == 200
    replica.replay_paused(True)
    try:
        token = _csrf(browser, f"{base}/projects/new")
        created = browser.post(
            f"{base}/projects/new",
            data={"name": "Fresh", "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/projects/new"},
            timeout=10,
        )
        assert created.status_code == 200 and "/p/fresh/settings/" in created.url, created.url
        # Not on the standby yet, yet its pages (replica-read pages) show it to its creator:
        # their reads go to the primary until the standby has replayed the creator's write.
        with replica.connect("agentops_template") as conn:
            on_replica = conn.execute(
                "SELECT count(*) FROM projects_project WHERE slug = 'fresh'"
            ).fetchone()[0]
        assert on_replica == 0
        overview = browser.get(f"{base}/p/fresh/", timeout=10)
        assert overview.status_code == 200 and "Fresh" in overview.text
        assert LAG_NOTICE not in overview.text  # read from the primary: nothing to say
        assert browser.get(f"{base}/p/fresh/sessions/", timeout=10).status_code == 200
        # The other browser reads the standby, where the project does not exist yet.
        assert elsewhere.get(f"{base}/p/fresh/", timeout=10).status_code == 404
    finally:
        replica.replay_paused(False)
    replica.wait_caught_up(primary)
    assert browser.get(f"{base}/p/fresh/", timeout=10).status_code == 200
    assert elsewhere.get(f"{base}/p/fresh/", timeout=10).status_code == 200


def test_a_replica_that_is_down_leaves_the_dashboard_on_the_primary(deployment):
    server, key, primary, replica = deployment
    base = server.url
    browser = _signed_in(base)
    replica.stop("fast")
    try:
        fresh, _ = _ingest_session(base, key)
        page = browser.get(f"{base}/p/replica/sessions/", timeout=10)
        assert page.status_code == 200 and fresh in page.text
    finally:
        replica.start()
    replica.wait_caught_up(primary)
