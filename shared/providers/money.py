"""Money from a provider's JSON, as a ``numeric(14, 2)`` column holds it."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

_LIMIT = Decimal(10) ** 12  # numeric(14, 2): below 10^12 once rounded to cents
_CENT = Decimal("0.01")


def money_text(value: Any) -> str | None:
    """An amount as decimal text; None when it is no number, not finite, or too large.

    The columns are nullable: one record's nonsense amount must not fail the whole page it
    came in. More than two decimals (``"1E-9"``, ``"1e-99999999"``) is sent rounded to cents,
    as the column would round it, so PostgreSQL never sees an exponent it refuses.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
        if not amount.is_finite() or amount.copy_abs() >= _LIMIT:
            return None
        cents = amount.quantize(_CENT, ROUND_HALF_UP)
        if cents.copy_abs() >= _LIMIT:  # 999999999999.999 rounds up
            return None
        exponent = amount.as_tuple().exponent  # an int, the amount being finite
        if isinstance(exponent, int) and exponent < -2:
            amount = cents
    except (ArithmeticError, ValueError):  # InvalidOperation and the other decimal signals
        return None
    return str(amount)
