"""The admin manages every model; the ApiKey admin never shows a hash and shows a new key once."""

import re

import pytest
from django.contrib.auth import get_user_model

from projects.keys import find_active_key, hash_key
from projects.models import ApiKey

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def admin_client(client, db):
    admin = get_user_model().objects.create_superuser("root", password="root-password-1")
    client.force_login(admin)
    return client


def test_creating_a_key_shows_its_raw_value_exactly_once(admin_client, project):
    response = admin_client.post(
        "/admin/projects/apikey/add/", {"project": str(project.pk), "label": "ci"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    shown = [m for m in UUID_RE.findall(page) if find_active_key(m)]
    assert len(shown) == 1, "the new raw key appears once, in the creation message"
    raw = shown[0]
    key = ApiKey.objects.get(label="ci")
    assert key.key_hash == hash_key(raw) and key.prefix == raw[:8]
    again = admin_client.get("/admin/projects/apikey/").content.decode()
    assert raw not in again
    assert raw[:8] in again


def test_no_admin_page_shows_a_key_hash(admin_client, api_key):
    key = find_active_key(api_key)
    for url in ("/admin/projects/apikey/", f"/admin/projects/apikey/{key.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert key.key_hash not in page and api_key not in page
        assert key.prefix in page


@pytest.mark.parametrize(
    "model",
    [
        "projects/project", "projects/membership", "projects/apikey",
        "agent_sessions/session", "agent_sessions/tag", "agent_sessions/agent",
        "events/event", "analytics/dailyrollup", "analytics/modeldailyrollup",
    ],
)  # fmt: skip
def test_every_model_has_an_admin_page(admin_client, model):
    assert admin_client.get(f"/admin/{model}/").status_code == 200
