"""Project settings: keys (shown once, revoke with confirmation), rename, members, new project."""

import re

from django.urls import reverse

from projects.keys import find_active_key
from projects.models import ApiKey, Membership, Project


def url(name, *args):
    return reverse(f"dashboard:{name}", args=args)


def test_creating_a_key_shows_the_raw_key_once_and_stores_only_its_hash(client, alice, project):
    client.force_login(alice)
    created = client.post(url("key_create", project.slug), {"label": "production"})
    # Post/Redirect/Get: the key page is a GET, so reloading it cannot mint a second key.
    assert created.status_code == 302
    assert created["Location"] == url("settings", project.slug) + "#new-key"
    response = client.get(created["Location"])
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    raw = re.search(r'readonly value="([0-9a-f-]{36})" id="new-key-value"', body).group(1)
    key = find_active_key(raw)
    assert key is not None and key.project == project and key.label == "production"
    assert key.key_hash != raw and raw not in key.key_hash
    # The settings page afterwards (a reload) lists the key by prefix but never shows it whole
    # again, mints nothing, and the raw key is gone from the server-side session.
    listing = client.get(url("settings", project.slug)).content.decode()
    assert raw[:8] in listing
    assert raw not in listing
    assert raw not in str(dict(client.session))
    assert ApiKey.objects.filter(project=project).count() == 1


def test_a_new_key_is_shown_only_in_its_own_projects_settings(
    client, alice, project, other_project
):
    Membership.objects.create(project=other_project, user=alice, role=Membership.Role.OWNER)
    client.force_login(alice)
    client.post(url("key_create", project.slug), {"label": "alpha key"})
    # Opened by hand in another project's settings, the pending key is not shown there...
    other = client.get(url("settings", other_project.slug)).content.decode()
    assert 'id="new-key-value"' not in other
    # ...and is not kept for later either: shown at most once, anywhere.
    assert 'id="new-key-value"' not in client.get(url("settings", project.slug)).content.decode()


def test_revoking_asks_for_confirmation_then_revokes(client, alice, project, api_key):
    client.force_login(alice)
    key = find_active_key(api_key)
    confirm = client.get(url("key_revoke", project.slug, key.id))
    assert confirm.status_code == 200
    assert b"Revoke key" in confirm.content
    key.refresh_from_db()
    assert key.revoked_at is None  # a GET changes nothing
    response = client.post(url("key_revoke", project.slug, key.id))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert find_active_key(api_key) is None


def test_rename_keeps_the_slug(client, alice, project):
    client.force_login(alice)
    slug = project.slug
    client.post(url("project_rename", project.slug), {"name": "Alpha Prime"})
    project.refresh_from_db()
    assert project.name == "Alpha Prime" and project.slug == slug
    response = client.post(url("project_rename", project.slug), {"name": "   "})
    assert response.status_code == 400


def test_owner_adds_changes_and_removes_members(client, alice, charlie, project):
    client.force_login(alice)
    client.post(url("member_add", project.slug), {"username": "charlie", "role": "member"})
    assert Membership.objects.get(project=project, user=charlie).role == "member"
    client.post(url("member_add", project.slug), {"username": "charlie", "role": "owner"})
    assert Membership.objects.get(project=project, user=charlie).role == "owner"
    membership = Membership.objects.get(project=project, user=charlie)
    client.post(url("member_remove", project.slug, membership.id))
    assert not Membership.objects.filter(project=project, user=charlie).exists()
    response = client.post(
        url("member_add", project.slug), {"username": "nobody", "role": "member"}
    )
    assert response.status_code == 400
    assert b"There is no user named" in response.content


def test_the_last_owner_cannot_be_removed_or_demoted(client, alice, project):
    client.force_login(alice)
    mine = Membership.objects.get(project=project, user=alice)
    client.post(url("member_remove", project.slug, mine.id))
    assert Membership.objects.filter(pk=mine.pk, role="owner").exists()
    client.post(url("member_add", project.slug), {"username": "alice", "role": "member"})
    mine.refresh_from_db()
    assert mine.role == "owner"


def test_a_user_creates_a_new_project_and_owns_it(client, charlie, other_project):
    client.force_login(charlie)
    # Same name as an existing project of another team: a new project, never a join.
    response = client.post(url("project_new"), {"name": "Alpha"})
    created = Project.objects.exclude(pk=other_project.pk).get(name="Alpha")
    assert response["Location"] == url("settings", created.slug)
    assert Membership.objects.get(project=created, user=charlie).role == "owner"
    assert ApiKey.objects.filter(project=created).count() == 0


def test_a_second_project_with_an_existing_name_does_not_join_it(client, charlie, project):
    client.force_login(charlie)
    client.post(url("project_new"), {"name": project.name})
    assert not Membership.objects.filter(project=project, user=charlie).exists()
    assert Project.objects.filter(name=project.name).count() == 2
