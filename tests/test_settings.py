"""Settings come from the environment, strictly: a bad value names its variable at start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from events.storage import is_postgres

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import django; django.setup(); from django.conf import settings; print(repr({expr}))"


def start(expr: str = "settings.DEBUG", **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(expr=expr)],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "agentops_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_DEBUG", "maybe"),
        ("DJANGO_DEBUG", "flase"),
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "postgres:///no-host"),
        ("CELERY_BROKER_URL", "localhost:6379"),
        ("SESSION_INACTIVITY_TIMEOUT", "half an hour"),
        ("SESSION_INACTIVITY_TIMEOUT", "0"),
        ("DATA_RETENTION_DAYS", "-3"),
    ],
)
def test_a_malformed_value_stops_start_up_naming_the_variable(variable, value):
    result = start(**{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_production_refuses_the_development_secret_key():
    result = start(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"), [("0", "False"), ("false", "False"), ("1", "True"), ("yes", "True")]
)
def test_debug_reads_booleans(value, expected):
    result = start(DJANGO_DEBUG=value, SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_defaults_are_sqlite_and_the_directory_broker(tmp_path):
    """No broker server configured: tasks still go to a broker (files under CELERY_BROKER_DIR,
    for the worker `make run` starts), never run inside the request."""
    result = start(
        "(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER, "
        "settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT, "
        "settings.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'], "
        "settings.SESSION_INACTIVITY_TIMEOUT, settings.DATA_RETENTION_DAYS, settings.PUBLIC_URL)",
        CELERY_BROKER_DIR=str(tmp_path / "broker"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(
        (
            "django.db.backends.sqlite3",
            False,
            "filesystem://localhost/",
            "agentops_site.broker:Transport",
            str(tmp_path / "broker"),
            1800,
            0,
            "",
        )
    )
    assert (tmp_path / "broker" / "processing").is_dir()


def test_postgres_and_a_broker_come_from_the_environment():
    result = start(
        "(settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'], "
        "settings.CELERY_TASK_ALWAYS_EAGER)",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/agentops",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "('django.db.backends.postgresql', 'agentops', False)"


@pytest.mark.skipif(not is_postgres(), reason="a Postgres connection setting")
@pytest.mark.django_db
def test_postgres_connections_are_tuned_for_the_dashboards_aggregates():
    """No JIT (20-40 ms per aggregate, never paid back) and room to hash a day's GROUP BY."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')")
        assert cursor.fetchone() == ("off", "32MB")


def test_without_a_replica_url_there_is_one_database():
    result = start("sorted(settings.DATABASES)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['default']"


def test_a_replica_url_adds_the_replica_alias_mirroring_the_primary_in_tests():
    result = start(
        "[settings.DATABASES['replica'][k] for k in ('HOST', 'PORT')]"
        " + [settings.DATABASES['replica']['TEST']['MIRROR']]"
        " + [settings.DATABASES['replica']['OPTIONS']['options']]",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/agentops",
        DATABASE_REPLICA_URL="postgres://reader@10.0.0.2:5433/agentops",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("['10.0.0.2', 5433, 'default', '-c jit=off -c work_mem=32MB']")


@pytest.mark.parametrize(
    ("primary", "replica"),
    [
        ("postgres://postgres@127.0.0.1:5432/agentops", "mysql://reader@10.0.0.2/agentops"),
        ("postgres://postgres@127.0.0.1:5432/agentops", "sqlite:///replica.sqlite3"),
        # A replica of SQLite does not exist: refused rather than silently ignored.
        ("sqlite:///db.sqlite3", "postgres://reader@10.0.0.2:5433/agentops"),
    ],
)
def test_a_replica_url_that_cannot_work_stops_start_up(primary, replica):
    result = start(DATABASE_URL=primary, DATABASE_REPLICA_URL=replica)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_REPLICA_URL" in result.stderr
