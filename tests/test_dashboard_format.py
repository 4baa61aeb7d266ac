"""The dashboard's money formatting: Decimal in, never a float, small amounts not rounded away."""

from decimal import Decimal

import pytest

from dashboard.templatetags.dash import usd


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (None, "unknown"),
        ("0", "$0.00"),
        ("1234.5", "$1,234.50"),
        ("0.5", "$0.50"),
        ("0.0123", "$0.0123"),
        ("0.000375", "$0.000375"),
        # What the SDK's end_session() and the API report for a 10 + 5 token gpt-4o-mini call.
        ("0.0000045", "$0.0000045"),
        ("0.00012345", "$0.000123"),
        ("0.0000000001", "$0.0000000001"),
    ],
)
def test_usd_keeps_three_significant_digits_under_a_cent(amount, shown):
    assert usd(None if amount is None else Decimal(amount)) == shown
