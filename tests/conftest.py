import os
import uuid

import pytest
from django.contrib.auth import get_user_model

from events.storage import is_postgres
from projects.keys import issue_key
from projects.models import Membership, Project

# A test that needs one of these runs real servers or processes: it is a `system` test, which
# `make test-fast` leaves out (CI runs everything).
SYSTEM_FIXTURES = frozenset({"live_server", "celery_broker"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("browser") or SYSTEM_FIXTURES.intersection(
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.system)


def pytest_configure(config):
    # CI sets REQUIRE_POSTGRES=1: a suite that silently fell back to SQLite would prove nothing.
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not os.environ.get(
        "DATABASE_URL", ""
    ).startswith(("postgres://", "postgresql://")):
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but DATABASE_URL is not a postgres:// URL")
    if not os.environ.get("CELERY_BROKER_URL"):
        # Without a broker server the settings use the directory broker, consumed by the worker
        # `make run` starts. The unit tests start no worker: their tasks run in-process, at the
        # call site. The directory broker itself, with a real worker and beat, is tested in
        # tests/test_make_run.py and tests/test_directory_broker.py.
        from agentops_site.celery import app

        app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _throttle_counters_of_this_test(settings):
    # The throttle counters live in the cache, which is Redis (shared by every run) on the
    # Postgres pass: each test counts under its own prefix, so one test's failed credential
    # checks never throttle another's.
    settings.THROTTLE_KEY_PREFIX = f"throttle-test-{uuid.uuid4().hex}"
    # The tests read right after a POST /v1/traces; on the Postgres pass (a Redis broker, no
    # worker) the queued write would leave it waiting. tests/test_otlp_queue.py turns it on,
    # with a real worker.
    settings.OTLP_WRITE = "inline"


@pytest.fixture(name="is_postgres")
def is_postgres_fixture():
    return is_postgres()


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def charlie(db):
    return get_user_model().objects.create_user("charlie", password="charlie-password-1")


@pytest.fixture
def project(db, alice, bob):
    """Alice owns it, Bob is a member, Charlie has no access."""
    p = Project.objects.create(name="Alpha")
    Membership.objects.create(project=p, user=alice, role=Membership.Role.OWNER)
    Membership.objects.create(project=p, user=bob, role=Membership.Role.MEMBER)
    return p


@pytest.fixture
def other_project(db, charlie):
    p = Project.objects.create(name="Beta")
    Membership.objects.create(project=p, user=charlie, role=Membership.Role.OWNER)
    return p


@pytest.fixture
def api_key(project, alice):
    return issue_key(project=project, label="test", created_by=alice).raw


@pytest.fixture
def other_api_key(other_project, charlie):
    return issue_key(project=other_project, label="test", created_by=charlie).raw
