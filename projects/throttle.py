"""Throttles of the v2 API: failed credential checks per client address, requests per API key.

Both are fixed-window counters in Django's cache (`cache.add` then `cache.incr`, each atomic on
Redis and on locmem), so with CACHE_URL on Redis every gunicorn worker and every web machine
counts against the same limit. A throttled request is a 429 with Retry-After (the seconds left
in the window), which both SDKs honour.

The throttle is a guard, not a dependency: when the cache cannot be reached the request goes
through (and the failure is logged), because refusing every agent's events while Redis restarts
would lose data, which is worse than letting a guesser try a few more keys.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.exceptions import Throttled

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or the address our trusted proxies saw.

    With THROTTLE_TRUSTED_PROXIES = n, the n-th address from the right of X-Forwarded-For is
    the client as the outermost trusted proxy saw it; anything left of it is client-supplied and
    could be forged to dodge the throttle, so it is never used.
    """
    proxies = settings.THROTTLE_TRUSTED_PROXIES
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies][:64]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _window(seconds: int) -> tuple[int, int]:
    """(index of the current window, seconds until it ends)."""
    now = time.time()
    index = int(now // seconds)
    return index, max(1, math.ceil((index + 1) * seconds - now))


def _key(kind: str, ident: str, index: int) -> str:
    return f"{settings.THROTTLE_KEY_PREFIX}:{kind}:{ident}:{index}"


def _count(kind: str, ident: str, seconds: int, *, increment: bool) -> tuple[int, int]:
    """(requests counted in this window including this one if incrementing, seconds left)."""
    index, left = _window(seconds)
    key = _key(kind, ident, index)
    cache = caches[settings.THROTTLE_CACHE]
    if not increment:
        return int(cache.get(key) or 0), left
    # add() is a no-op when the key exists; incr() is atomic on every backend we configure.
    cache.add(key, 0, timeout=seconds + 1)
    try:
        return cache.incr(key), left
    except ValueError:  # expired between add() and incr(): start the window again
        cache.add(key, 1, timeout=seconds + 1)
        return 1, left


def _throttled(message: str, wait: int) -> Throttled:
    return Throttled(wait=wait, detail=f"{message} Retry after {wait} seconds.")


def refuse_if_address_blocked(request) -> None:
    """429 before any credential check from an address with too many recent failures.

    Checked first, so a blocked address learns nothing more, not even whether a key is valid.
    """
    limit = settings.AUTH_FAILURE_LIMIT
    if not limit:
        return
    try:
        failures, left = _count(
            "authfail", client_address(request), settings.AUTH_FAILURE_WINDOW, increment=False
        )
    except Exception:
        logger.exception("throttle cache unavailable; not throttling failed credential checks")
        return
    if failures >= limit:
        raise _throttled("Too many failed credential checks from this address.", left)


def record_auth_failure(request) -> None:
    if not settings.AUTH_FAILURE_LIMIT:
        return
    try:
        _count("authfail", client_address(request), settings.AUTH_FAILURE_WINDOW, increment=True)
    except Exception:
        logger.exception("throttle cache unavailable; failed credential check not counted")


def refuse_if_key_over_rate(key_id) -> None:
    """429 once an API key (or the session tokens it issued) made more requests than its rate."""
    limit = settings.API_KEY_RATE_LIMIT
    if not limit:
        return
    try:
        used, left = _count("key", str(key_id), settings.API_KEY_RATE_WINDOW, increment=True)
    except Exception:
        logger.exception("throttle cache unavailable; not rate-limiting API key %s", key_id)
        return
    if used > limit:
        raise _throttled(
            f"This API key made more than {limit} requests in {settings.API_KEY_RATE_WINDOW} s.",
            left,
        )
