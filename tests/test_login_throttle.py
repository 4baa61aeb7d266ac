"""Login throttling (django-axes): after LOGIN_FAILURE_LIMIT (5) wrong passwords from one
address, that address is locked out (429, even with the right password) for
LOGIN_LOCKOUT_MINUTES; other addresses are not; a success before the limit resets the count."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

LIMIT = 5


def attempt(client, password, *, address="203.0.113.7", path=None):
    return client.post(
        path or reverse("login"),
        {"username": "alice", "password": password},
        REMOTE_ADDR=address,
    )


def test_wrong_passwords_lock_the_address_out(client, alice):
    for _ in range(LIMIT - 1):
        response = attempt(client, "wrong")
        assert response.status_code == 200
        assert b"did not match" in response.content
    assert attempt(client, "wrong").status_code == 429  # the fifth failure locks out
    # Locked out: the right password is refused too, and nothing is signed in.
    locked = attempt(client, "alice-password-1")
    assert locked.status_code == 429
    assert b"Too many failed sign-ins" in locked.content
    assert "_auth_user_id" not in client.session
    # Another address is not affected.
    other = attempt(client, "alice-password-1", address="198.51.100.2")
    assert other.status_code == 302


def test_the_admin_login_counts_too(client, alice):
    admin_login = reverse("admin:login")
    for _ in range(LIMIT):
        attempt(client, "wrong", path=admin_login)
    assert attempt(client, "alice-password-1", path=admin_login).status_code == 429


def test_a_successful_login_resets_the_count(client, alice):
    for _ in range(LIMIT - 1):
        attempt(client, "wrong")
    assert attempt(client, "alice-password-1").status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        assert attempt(client, "wrong").status_code == 200
    assert attempt(client, "alice-password-1").status_code == 302


def test_the_lockout_follows_the_trusted_proxy_rule(client, alice, settings):
    """Behind one trusted proxy the client is the address it saw, not the proxy's: a guesser
    behind the proxy is locked out without locking out everyone else behind it."""
    settings.THROTTLE_TRUSTED_PROXIES = 1
    for _ in range(LIMIT):
        client.post(
            reverse("login"),
            {"username": "alice", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )
    ok = client.post(
        reverse("login"),
        {"username": "alice", "password": "alice-password-1"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.4",
    )
    assert ok.status_code == 302


def test_a_forwarded_address_that_is_not_an_ip_is_not_a_500(client, alice, settings):
    settings.THROTTLE_TRUSTED_PROXIES = 1
    response = client.post(
        reverse("login"),
        {"username": "alice", "password": "alice-password-1"},
        HTTP_X_FORWARDED_FOR="not-an-address",
    )
    assert response.status_code == 302
