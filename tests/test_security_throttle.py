"""Throttles: failed credential checks per client address, and the configurable rate per key."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import redis
from django.core.cache import caches

from projects.auth import JWT_ALGORITHM, JWT_AUDIENCE, _jwt_secret
from projects.keys import find_active_key
from tests.v2 import get, llm, post, start

ALICE_ADDR = {"REMOTE_ADDR": "203.0.113.7"}
OTHER_ADDR = {"REMOTE_ADDR": "198.51.100.9"}


def bad_key_request(client, **meta):
    return get(client, "/v2/sessions", key=str(uuid.uuid4()), **meta)


@pytest.fixture
def strict(settings):
    settings.AUTH_FAILURE_LIMIT = 3
    settings.AUTH_FAILURE_WINDOW = 60
    return settings


def test_failed_key_checks_from_one_address_end_in_429_with_retry_after(client, api_key, strict):
    for _ in range(3):
        assert bad_key_request(client, **ALICE_ADDR).status_code == 401
    refused = get(client, "/v2/sessions", key=api_key, **ALICE_ADDR)
    # Even the right key is refused now: a blocked address learns nothing, not even a hit.
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many failed credential checks" in refused.json()["message"]
    # Other addresses are not affected.
    assert get(client, "/v2/sessions", key=api_key, **OTHER_ADDR).status_code == 200


def test_successful_checks_do_not_count(client, api_key, strict):
    for _ in range(10):
        assert get(client, "/v2/sessions", key=api_key, **ALICE_ADDR).status_code == 200
    assert bad_key_request(client, **ALICE_ADDR).status_code == 401


def test_malformed_keys_and_forged_tokens_count_too(client, api_key, strict):
    _, token = start(client, api_key)
    forged = pyjwt.encode(
        {"sid": str(uuid.uuid4()), "pid": str(uuid.uuid4()), "kid": str(uuid.uuid4())},
        "not our secret, but long enough to pass as one",
        algorithm="HS256",
    )
    assert get(client, "/v2/sessions", key="'; DROP TABLE x; --", **ALICE_ADDR).status_code == 401
    events = {"events": [llm()]}
    assert post(client, "/v2/create_events", events, jwt=forged, **ALICE_ADDR).status_code == 401
    basic = {"HTTP_AUTHORIZATION": "Basic abc", **ALICE_ADDR}
    assert post(client, "/v2/create_events", events, **basic).status_code == 401
    refused = post(client, "/v2/create_events", events, jwt=token, **ALICE_ADDR)
    assert refused.status_code == 429 and "Retry-After" in refused


def test_an_expired_token_of_ours_is_not_counted_as_a_guess(client, api_key, strict):
    sid, token = start(client, api_key)
    key = find_active_key(api_key)
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = pyjwt.encode(
        {
            "sid": sid,
            "pid": str(key.project_id),
            "kid": str(key.pk),
            "aud": JWT_AUDIENCE,
            "iat": past,
            "exp": past + timedelta(minutes=1),
        },
        _jwt_secret(),
        algorithm=JWT_ALGORITHM,
    )
    for _ in range(5):
        response = post(client, "/v2/create_events", {"events": [llm()]}, jwt=expired, **ALICE_ADDR)
        assert response.status_code == 401 and "expired" in response.json()["message"]
    ok = post(client, "/v2/create_events", {"events": [llm()]}, jwt=token, **ALICE_ADDR)
    assert ok.status_code == 200


def test_the_block_lifts_when_the_window_ends(client, api_key, settings):
    settings.AUTH_FAILURE_LIMIT = 2
    settings.AUTH_FAILURE_WINDOW = 1
    # Start at the beginning of a window so both failures land in the same one.
    time.sleep(1 - (time.time() % 1))
    assert bad_key_request(client, **ALICE_ADDR).status_code == 401
    assert bad_key_request(client, **ALICE_ADDR).status_code == 401
    blocked = get(client, "/v2/sessions", key=api_key, **ALICE_ADDR)
    assert blocked.status_code == 429 and blocked["Retry-After"] == "1"
    time.sleep(1.1)
    assert get(client, "/v2/sessions", key=api_key, **ALICE_ADDR).status_code == 200


def test_x_forwarded_for_is_believed_only_behind_configured_proxies(client, api_key, strict):
    forged_hops = {"HTTP_X_FORWARDED_FOR": "10.9.9.9", **ALICE_ADDR}
    for n in range(3):
        # A client rotating a forged header does not escape: with no trusted proxy it is ignored.
        forged_hops["HTTP_X_FORWARDED_FOR"] = f"10.9.9.{n}"
        assert bad_key_request(client, **forged_hops).status_code == 401
    assert get(client, "/v2/sessions", key=api_key, **forged_hops).status_code == 429

    strict.THROTTLE_TRUSTED_PROXIES = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(3):
        meta = {"HTTP_X_FORWARDED_FOR": "1.2.3.4, 192.0.2.10", **proxy}
        assert bad_key_request(client, **meta).status_code == 401
    # The proxy saw 192.0.2.10; the left-most hop is client-supplied and ignored.
    behind = {"HTTP_X_FORWARDED_FOR": "5.6.7.8, 192.0.2.10", **proxy}
    assert get(client, "/v2/sessions", key=api_key, **behind).status_code == 429
    neighbour = {"HTTP_X_FORWARDED_FOR": "192.0.2.11", **proxy}
    assert get(client, "/v2/sessions", key=api_key, **neighbour).status_code == 200


def test_the_per_key_rate_counts_key_and_token_requests(client, api_key, other_api_key, settings):
    settings.API_KEY_RATE_LIMIT = 4
    settings.API_KEY_RATE_WINDOW = 60
    left = 60 - time.time() % 60
    if left < 5:  # all five requests must fall in one window
        time.sleep(left)
    _, token = start(client, api_key)  # 1
    assert post(client, "/v2/create_events", {"events": [llm()]}, jwt=token).status_code == 200
    assert get(client, "/v2/sessions", key=api_key).status_code == 200  # 3
    assert post(client, "/v2/create_events", {"events": [llm()]}, jwt=token).status_code == 200
    over = post(client, "/v2/create_events", {"events": [llm()]}, jwt=token)
    assert over.status_code == 429
    assert int(over["Retry-After"]) >= 1 and "more than 4 requests" in over.json()["message"]
    assert get(client, "/v2/sessions", key=api_key).status_code == 429
    # Another project's key has its own budget.
    assert get(client, "/v2/sessions", key=other_api_key).status_code == 200


def test_the_rate_limit_is_off_by_default(client, api_key, settings):
    assert settings.API_KEY_RATE_LIMIT == 0
    _, token = start(client, api_key)
    for _ in range(30):
        assert post(client, "/v2/create_events", {"events": [llm()]}, jwt=token).status_code == 200


def test_counters_are_shared_through_redis_across_processes(client, api_key, settings):
    """With the cache on Redis, what one web process counted another sees (here: this test
    process counts, and a separate Redis client reads the same counter)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/6",
            "KEY_PREFIX": "agentops-test",
        }
    }
    settings.AUTH_FAILURE_LIMIT = 2
    for _ in range(2):
        assert bad_key_request(client, **ALICE_ADDR).status_code == 401
    raw = redis.Redis.from_url("redis://127.0.0.1:6379/6")
    keys = raw.keys(f"agentops-test:*{settings.THROTTLE_KEY_PREFIX}:authfail:203.0.113.7:*")
    assert len(keys) == 1 and int(raw.get(keys[0])) == 2
    assert get(client, "/v2/sessions", key=api_key, **ALICE_ADDR).status_code == 429
    raw.delete(*keys)
    caches["default"].close()


def test_a_cache_that_is_down_never_blocks_ingest(client, api_key, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Nothing listens on port 9: every cache call fails at once.
            "LOCATION": "redis://127.0.0.1:9/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    settings.API_KEY_RATE_LIMIT = 1
    _, token = start(client, api_key)
    for _ in range(3):
        assert post(client, "/v2/create_events", {"events": [llm()]}, jwt=token).status_code == 200
    assert bad_key_request(client).status_code == 401
