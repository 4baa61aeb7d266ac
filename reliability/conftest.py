"""Fixtures of the reliability suite (`make reliability`): a private Postgres, servers we own."""

import os
from collections.abc import Iterator

import pytest

from reliability.servers import PrivatePostgres


def pytest_report_header(config):
    return "reliability: private PostgreSQL cluster + gunicorn subprocesses"


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    """One private cluster per run, with a migrated template database."""
    cluster = PrivatePostgres()
    try:
        cluster.migrate_template()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(private_pg) -> str:
    """A fresh, migrated database of the private cluster, for this test alone."""
    return private_pg.url(private_pg.new_database())


@pytest.fixture(scope="session")
def load_seconds() -> float:
    return float(os.environ.get("RELIABILITY_LOAD_SECONDS", "20"))


def pytest_terminal_summary(terminalreporter):
    from reliability import figures

    text = figures.dump()
    if text:
        terminalreporter.section("reliability figures")
        terminalreporter.write_line(text)
