"""Login throttling: django-axes, wired to our client-address rule.

django-axes counts failed logins (dashboard and /admin/) per client address in the database and
locks the address out for LOGIN_LOCKOUT_MINUTES after LOGIN_FAILURE_LIMIT failures, answering
429 with templates/registration/locked_out.html. A successful login resets the count.
"""

import ipaddress

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest

from projects.throttle import client_address


def client_ip(request: HttpRequest) -> str | None:
    """The address axes counts against: the same rule as the API throttles (trusted proxies).

    None when that is not an IP address (no REMOTE_ADDR, or a proxy header holding junk): axes
    stores it in an IP column, which Postgres refuses anything else for, and a login must never
    fail with a 500 over it."""
    address = client_address(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


class LoginThrottleBackend(AxesStandaloneBackend):
    """axes' backend, except that a call with no request is not a client's login attempt.

    `authenticate()` without a request comes from code (management commands, the test client's
    `login()`), never from a form, so there is no address to count and nothing to refuse; axes
    itself would raise. Every login through a form or /admin/ carries its request and is counted.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
