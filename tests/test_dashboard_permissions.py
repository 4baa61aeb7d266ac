"""Permission boundaries: members see only their projects (404 otherwise); only owners manage
(a member asking for an owner's page is told 403: they know the project, they may not manage it)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from projects.keys import issue_key
from projects.models import ApiKey, Membership
from tests.factories import make_session


def url(name, *args):
    return reverse(f"dashboard:{name}", args=args)


@pytest.fixture
def beta_session(other_project):
    return make_session(other_project, start=timezone.now() - timedelta(hours=1))


@pytest.fixture
def beta_key(other_project, charlie):
    return issue_key(project=other_project, label="beta", created_by=charlie).api_key


def beta_pages(other_project, beta_session, beta_key):
    slug, sid = other_project.slug, beta_session.id
    return [
        ("get", url("overview", slug)),
        ("get", url("sessions", slug)),
        ("get", url("sessions_export", slug, "csv")),
        ("get", url("sessions_export", slug, "jsonl")),
        ("get", url("session", slug, sid)),
        ("get", url("session_timeline", slug, sid)),
        ("get", url("session_export", slug, sid)),
        ("get", url("session_events_csv", slug, sid)),
        ("get", url("tags", slug)),
        ("get", url("settings", slug)),
        ("post", url("key_create", slug)),
        ("get", url("key_revoke", slug, beta_key.id)),
        ("post", url("key_revoke", slug, beta_key.id)),
        ("post", url("project_rename", slug)),
        ("post", url("member_add", slug)),
        ("get", url("switch") + f"?project={slug}"),
    ]


def test_a_member_of_project_a_gets_404_for_everything_of_project_b(
    client, alice, project, other_project, beta_session, beta_key
):
    client.force_login(alice)
    for method, path in beta_pages(other_project, beta_session, beta_key):
        response = getattr(client, method)(
            path, {"label": "x", "name": "pwned", "username": "alice"}
        )
        assert response.status_code == 404, (method, path, response.status_code)
    beta_key.refresh_from_db()
    assert beta_key.revoked_at is None
    other_project.refresh_from_db()
    assert other_project.name == "Beta"
    assert not Membership.objects.filter(project=other_project, user=alice).exists()


def test_a_session_of_project_b_is_404_even_under_project_a_slug(
    client, alice, project, beta_session
):
    client.force_login(alice)
    for name in ("session", "session_timeline", "session_export", "session_events_csv"):
        assert client.get(url(name, project.slug, beta_session.id)).status_code == 404, name


def test_a_key_of_project_b_cannot_be_revoked_through_project_a(client, alice, project, beta_key):
    client.force_login(alice)
    response = client.post(url("key_revoke", project.slug, beta_key.id))
    assert response.status_code == 404
    beta_key.refresh_from_db()
    assert beta_key.revoked_at is None


def test_a_non_owner_member_sees_data_but_cannot_manage_keys_or_members(
    client, bob, project, alice
):
    key = issue_key(project=project, label="prod", created_by=alice).api_key
    client.force_login(bob)
    assert client.get(url("overview", project.slug)).status_code == 200
    assert client.get(url("sessions", project.slug)).status_code == 200
    body = client.get(url("overview", project.slug)).content.decode()
    assert url("settings", project.slug) not in body
    for method, path, data in (
        ("get", url("settings", project.slug), {}),
        ("post", url("key_create", project.slug), {"label": "mine"}),
        ("get", url("key_revoke", project.slug, key.id), {}),
        ("post", url("key_revoke", project.slug, key.id), {}),
        ("post", url("project_rename", project.slug), {"name": "Renamed"}),
        ("post", url("member_add", project.slug), {"username": "bob", "role": "owner"}),
    ):
        response = getattr(client, method)(path, data)
        assert response.status_code == 403, (method, path)
        assert b"Only the project&#x27;s owners manage its settings." in response.content
    alice_membership = Membership.objects.get(project=project, user=alice)
    response = client.post(url("member_remove", project.slug, alice_membership.id))
    assert response.status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None
    assert ApiKey.objects.filter(project=project).count() == 1
    assert Membership.objects.get(project=project, user=bob).role == "member"
    project.refresh_from_db()
    assert project.name == "Alpha"


def test_anonymous_users_are_sent_to_sign_in_and_get_no_data(
    client, project, other_project, beta_session, beta_key
):
    for method, path in beta_pages(other_project, beta_session, beta_key):
        response = getattr(client, method)(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("login"))


def test_the_project_switcher_lists_only_my_projects(client, alice, project, other_project):
    client.force_login(alice)
    body = client.get(url("overview", project.slug)).content.decode()
    assert f'value="{project.slug}"' in body
    assert f'value="{other_project.slug}"' not in body
    assert client.get(url("switch") + f"?project={project.slug}").status_code == 302
