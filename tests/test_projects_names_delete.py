"""Project names are unique per owner (and existing duplicates renamed by a migration); an
owner deletes a project by typing its name, which removes everything it holds."""

import importlib

from django.apps import apps
from django.urls import reverse

from analytics.models import DailyRollup
from events.models import Event
from projects.keys import find_active_key, issue_key
from projects.models import ApiKey, Membership, Project
from sessions.models import Session, SessionTag, Tag
from tests.v2 import T0, event, llm, send, start


def url(name, *args):
    return reverse(f"dashboard:{name}", args=args)


def test_an_owner_cannot_create_or_rename_into_a_name_they_already_own(client, alice, project):
    client.force_login(alice)
    response = client.post(url("project_new"), {"name": "alpha"})  # case-insensitive
    assert response.status_code == 200
    assert b"already own a project named" in response.content
    assert Project.objects.filter(name__iexact="alpha").count() == 1
    client.post(url("project_new"), {"name": "Beta"})
    beta = Project.objects.get(name="Beta", memberships__user=alice)
    response = client.post(url("project_rename", beta.slug), {"name": "Alpha"})
    assert response.status_code == 400 and b"already own a project named" in response.content
    beta.refresh_from_db()
    assert beta.name == "Beta"
    # Renaming a project to its own name (or its own name's case) is fine.
    assert client.post(url("project_rename", beta.slug), {"name": "BETA"}).status_code == 302


def test_another_owner_may_use_the_same_name(client, charlie, project):
    client.force_login(charlie)
    client.post(url("project_new"), {"name": project.name})
    assert Project.objects.filter(name=project.name).count() == 2


def test_the_migration_renames_an_owners_duplicates_and_keeps_slugs(alice, charlie):
    first = Project.objects.create(name="Alpha")
    second = Project.objects.create(name="alpha")
    third = Project.objects.create(name="Alpha")
    theirs = Project.objects.create(name="Alpha")
    for p in (first, second, third):
        Membership.objects.create(project=p, user=alice, role="owner")
    Membership.objects.create(project=theirs, user=charlie, role="owner")
    slugs = {p.pk: p.slug for p in (first, second, third)}
    migration = importlib.import_module("projects.migrations.0003_unique_project_names_per_owner")
    migration.rename_duplicates(apps, None)
    names = [Project.objects.get(pk=p.pk).name for p in (first, second, third, theirs)]
    assert names == ["Alpha", "alpha (2)", "Alpha (3)", "Alpha"]
    assert {p.pk: Project.objects.get(pk=p.pk).slug for p in (first, second, third)} == slugs


def test_deleting_a_project_needs_the_owner_and_its_name_typed(client, alice, bob, project):
    client.force_login(bob)  # a member, not an owner
    assert client.post(url("project_delete", project.slug), {"confirm": "Alpha"}).status_code == 403
    client.force_login(alice)
    response = client.post(url("project_delete", project.slug), {"confirm": "alpha"})
    assert response.status_code == 400 and b"exactly to delete it" in response.content
    assert client.get(url("project_delete", project.slug)).status_code == 405
    assert Project.objects.filter(pk=project.pk).exists()


def test_deleting_a_project_removes_its_sessions_events_keys_and_rollups(
    client, alice, project, other_project, charlie
):
    key = issue_key(project=project, label="k", created_by=alice).raw
    other_key = issue_key(project=other_project, label="k", created_by=charlie).raw
    sid, jwt = start(client, key, tags=["prod"])
    send(client, jwt, [llm(), event("tools", name="search")])
    other_sid, other_jwt = start(client, other_key)
    send(client, other_jwt, [llm()])
    DailyRollup.objects.get_or_create(project=project, day=T0.date())
    assert DailyRollup.objects.filter(project=project).exists()
    assert Event.objects.filter(project=project).count() == 2

    client.force_login(alice)
    response = client.post(url("project_delete", project.slug), {"confirm": "Alpha"})
    assert response.status_code == 302 and response["Location"] == url("home")
    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Session.objects.filter(pk=sid).exists()
    assert not Event.objects.filter(session_id=sid).exists()
    assert not Tag.objects.filter(project_id=project.pk).exists()
    assert not SessionTag.objects.filter(session_id=sid).exists()
    assert not ApiKey.objects.filter(project_id=project.pk).exists()
    assert find_active_key(key) is None
    assert not DailyRollup.objects.filter(project_id=project.pk).exists()
    # The other team's project is untouched.
    assert Session.objects.filter(pk=other_sid).exists()
    assert Event.objects.filter(session_id=other_sid).count() == 1
    follow = client.get(response["Location"], follow=True)
    assert b"Deleted Alpha: 1 session, 2 events" in follow.content
