import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from projects.keys import find_active_key, hash_key, parse_raw_key
from projects.models import ApiKey, Membership, Project


def run_createproject(*args) -> list[str]:
    out = io.StringIO()
    call_command("createproject", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def all_text_in_database() -> str:
    """Every text cell of every table, to prove a secret is not stored anywhere."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                chunks.extend(str(cell) for cell in row)
    return "\n".join(chunks)


def test_it_prints_a_uuid4_key_alone_on_the_last_line(db):
    raw = run_createproject("Support bot")[-1]
    assert parse_raw_key(raw) == raw
    assert raw[14] == "4"


def test_the_key_authenticates_against_its_stored_hash(db):
    raw = run_createproject("Support bot")[-1]
    key = find_active_key(raw)
    assert key is not None
    assert key.project.name == "Support bot"
    assert key.key_hash == hash_key(raw)
    assert key.prefix == raw[:8]


def test_the_raw_key_is_not_stored_anywhere(db):
    raw = run_createproject("Support bot")[-1]
    text = all_text_in_database()
    assert hash_key(raw) in text
    assert raw not in text
    assert raw.replace("-", "") not in text


def test_running_it_twice_reuses_the_project_and_issues_a_second_key(db):
    first = run_createproject("Support bot")[-1]
    second = run_createproject("Support bot")[-1]
    assert first != second
    assert Project.objects.filter(name="Support bot").count() == 1
    assert ApiKey.objects.count() == 2


def test_owner_becomes_an_owner_member(db):
    user = get_user_model().objects.create_user("olivia")
    run_createproject("Support bot", "--owner", "olivia")
    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.OWNER
    assert membership.project.name == "Support bot"


def test_unknown_owner_is_a_clear_error(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run_createproject("Support bot", "--owner", "nobody")
    assert not Project.objects.exists()


def test_revoked_and_malformed_keys_do_not_authenticate(db):
    raw = run_createproject("Support bot")[-1]
    key = find_active_key(raw)
    key.revoked_at = key.created_at
    key.save()
    assert find_active_key(raw) is None
    assert find_active_key("not-a-key") is None
    assert find_active_key("") is None
    assert find_active_key(None) is None
