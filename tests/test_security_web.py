"""Web security: CSRF on every dashboard form, cookie flags and `check --deploy` in production
settings, API keys stored only as digests, and no cross-project reads through list cursors or
exports. (The authorisation matrix of the v2 API is tests/test_auth_matrix.py; the dashboard's
own permission boundaries are tests/test_dashboard_permissions.py.)"""

import hashlib
import os
import re
import secrets
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from projects.keys import find_active_key, issue_key
from projects.models import ApiKey
from tests.v2 import get, llm, send, start

ROOT = Path(__file__).resolve().parent.parent


class Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"method": (attrs.get("method") or "get").lower(), **attrs})
            self.forms[-1]["fields"] = []
        elif tag in ("input", "select", "textarea", "button") and self.forms:
            self.forms[-1]["fields"].append(attrs.get("name"))


def post_forms(html: str, page: str) -> list[tuple[str, list]]:
    parser = Forms()
    parser.feed(html)
    return [
        (form.get("action") or page, form["fields"])
        for form in parser.forms
        if form["method"] == "post"
    ]


@pytest.fixture
def seeded(client, api_key, project, alice):
    sid, jwt = start(client, api_key, tags=["t"])
    send(client, jwt, [llm()])
    return sid


def test_every_dashboard_form_refuses_a_post_without_its_csrf_token(
    seeded, project, alice, bob, api_key
):
    browser = Client(enforce_csrf_checks=True)
    forms: dict[str, list] = {}
    for action, fields in post_forms(browser.get("/login/").content.decode(), "/login/"):
        forms[action] = fields
    browser.force_login(alice)
    key_id = find_active_key(api_key).pk
    pages = [
        "/projects/new",
        f"/p/{project.slug}/",
        f"/p/{project.slug}/sessions/",
        f"/p/{project.slug}/sessions/{seeded}/",
        f"/p/{project.slug}/tags/",
        f"/p/{project.slug}/settings/",
        f"/p/{project.slug}/settings/keys/{key_id}/revoke",
    ]
    for page in pages:
        response = browser.get(page)
        assert response.status_code == 200, page
        for action, fields in post_forms(response.content.decode(), page):
            forms[action] = fields
    # The walk found the forms the dashboard has (it cannot pass by finding none).
    names = {re.sub(r"[0-9a-f-]{36}|\d+", "<id>", a) for a in forms}
    for expected in (
        "/login/",
        "/logout/",
        "/projects/new",
        f"/p/{project.slug}/settings/keys/new",
        f"/p/{project.slug}/settings/keys/<id>/revoke",
        f"/p/{project.slug}/settings/rename",
        f"/p/{project.slug}/settings/members/add",
    ):
        assert expected in names, (expected, sorted(names))
    assert any("/members/" in a and "remove" in a for a in forms), sorted(forms)
    for action, fields in forms.items():
        assert "csrfmiddlewaretoken" in fields, action
        refused = browser.post(action, {"name": "x", "label": "x", "username": "bob"})
        assert refused.status_code == 403, (action, refused.status_code)
    # And nothing happened: the key is not revoked, no key or project was added.
    assert ApiKey.objects.filter(project=project, revoked_at__isnull=True).count() == 1
    project.refresh_from_db()
    assert project.name == "Alpha"


def production_env(**extra) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "SECURE_", "SECRET_KEY", "ALLOWED_HOSTS"))
    }
    env.update(
        DJANGO_DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="agentops.example.com",
        **extra,
    )
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_cookies_are_secure_and_http_only_outside_debug():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.DEBUG)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**production_env(), "DJANGO_SETTINGS_MODULE": "agentops_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == ["True", "True", "True", "True", "True", "False"]


def test_the_session_cookie_a_sign_in_sets_is_secure_and_http_only(client, alice, settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    response = client.post(
        "/login/", {"username": "alice", "password": "alice-password-1"}, secure=True
    )
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


def test_api_keys_are_stored_only_as_sha256_digests(project, alice):
    issued = issue_key(project=project, label="digest", created_by=alice)
    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert stored.key_hash == hashlib.sha256(issued.raw.encode()).hexdigest()
    assert stored.prefix == issued.raw[:8]
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert issued.raw not in dump.getvalue()
    assert issued.raw.replace("-", "") not in dump.getvalue()
    # A key one character off is not found (the lookup is by digest, nothing prefix-like).
    off = issued.raw[:-1] + ("0" if issued.raw[-1] != "0" else "1")
    assert find_active_key(off) is None and find_active_key(issued.raw) == stored


def test_a_cursor_from_another_project_reveals_none_of_its_sessions(client, api_key, other_api_key):
    mine = {start(client, api_key)[0] for _ in range(3)}
    theirs = {start(client, other_api_key)[0] for _ in range(3)}
    page = get(client, "/v2/sessions?limit=1", key=other_api_key).json()
    assert page["next_cursor"]
    seen: set[str] = set()
    cursor = page["next_cursor"]
    # Follow the other project's cursor with my key: only my sessions ever come back.
    for _ in range(5):
        response = get(client, f"/v2/sessions?limit=1&cursor={cursor}", key=api_key)
        assert response.status_code in (200, 400)
        if response.status_code != 200:
            break
        body = response.json()
        seen |= {s["session_id"] for s in body["sessions"]}
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert not seen & theirs and seen <= mine
    for sid in theirs:
        for what in ("stats", "export"):
            assert get(client, f"/v2/sessions/{sid}/{what}", key=api_key).status_code == 404
    listed = {s["session_id"] for s in get(client, "/v2/sessions", key=api_key).json()["sessions"]}
    assert listed == mine


def test_a_tampered_cursor_is_a_400_not_a_500(client, api_key):
    for cursor in ("x", "%00", "a" * 5000, str(uuid.uuid4()), "eyJ0IjoiMjAyNiJ9"):
        response = get(client, f"/v2/sessions?cursor={cursor}", key=api_key)
        assert response.status_code in (200, 400), (cursor, response.content)
