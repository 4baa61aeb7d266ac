"""Formatting for the dashboard: money (Decimal, never float), durations, rates, query strings."""

from datetime import timedelta
from decimal import Decimal

from django import template
from django.http import QueryDict

from dashboard.payloads import last_line
from sessions.totals import known_cost

register = template.Library()


@register.filter
def reason_head(reason: str) -> str:
    """An end-state reason as one line: a traceback (a crash) by its exception line, the last,
    not its "Traceback (most recent call last):" header."""
    return last_line(reason)


@register.filter
def usd(value) -> str:
    """$1,234.56; amounts under a cent keep three significant digits ($0.000375, $0.0000045),
    as the API reports them. None is "unknown"."""
    if value is None:
        return "unknown"
    value = Decimal(value)
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) >= Decimal("0.01"):
        whole, _, cents = f"{value:.4f}".rstrip("0").partition(".")
        return f"${whole}.{cents.ljust(2, '0')}"
    places = 2 - value.adjusted()  # adjusted(): the exponent of the first significant digit
    return "$" + f"{value:.{places}f}".rstrip("0")


@register.simple_tag
def cost_of(obj) -> str:
    """A session's or a rollup's cost with its unknown part: "unknown", "$1.20 + unknown"
    (sessions.totals.known_cost decides which)."""
    unknown = getattr(obj, "cost_unknown_events", None)
    if unknown is None:
        unknown = getattr(obj, "cost_unknown", 0)
    cost = known_cost(getattr(obj, "cost", None), unknown)
    if cost is not None and unknown:
        return f"{usd(cost)} + unknown"
    return usd(cost)


@register.filter
def event_cost(event) -> str:
    if event.cost is None:
        return "unknown" if event.event_type == "llms" else "—"
    return usd(event.cost)


@register.filter
def seconds(value) -> str:
    """1.2 s, 3 m 04 s, 2 h 05 m; an em dash for None (still running)."""
    if value is None:
        return "—"
    if isinstance(value, timedelta):
        value = value.total_seconds()
    value = float(value)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


@register.filter
def pct(value) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%"


@register.filter
def intcomma0(value) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


@register.filter
def state_class(end_state) -> str:
    return {
        "Success": "success",
        "Fail": "fail",
        "Indeterminate": "indeterminate",
    }.get(end_state or "", "running")


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with `changes` applied (None removes a key); always starts "?"."""
    params: QueryDict = context["request"].GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None and value != "":
            params[key] = value
    encoded = params.urlencode()
    return "?" + encoded if encoded else "?"


@register.simple_tag(takes_context=True)
def query_without(context, key, value) -> str:
    """The current query string without one value of a repeated key, and without the cursor."""
    params: QueryDict = context["request"].GET.copy()
    params.setlist(key, [v for v in params.getlist(key) if v != value])
    for cursor in ("after", "before"):
        params.pop(cursor, None)
    encoded = params.urlencode()
    return "?" + encoded if encoded else "?"


@register.filter
def get_item(mapping, key):
    return mapping.get(key)
