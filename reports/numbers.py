"""How numbers are written in the report: 4 significant digits, scientific when tiny or huge.

    fmt_number(0.973123)  -> "0.9731"
    fmt_number(3.2e-14)   -> "3.2e-14"
    fmt_number(12345.67)  -> "12346"
    fmt_number(20.0)      -> "20"
"""
from __future__ import annotations

import math
from typing import Any


def fmt_number(value: Any) -> str:
    """A number with 4 significant digits; anything else as its string (None as "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, float):
        if hasattr(value, "item"):  # a NumPy scalar
            return fmt_number(value.item())
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    size = abs(value)
    if 1e-3 <= size < 1e4 and "e" not in (text := f"{value:.4g}"):
        return text
    if 1e-3 <= size < 1e9:
        return f"{value:.0f}"
    mantissa, exponent = f"{value:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def fmt_cell(value: Any) -> str:
    """A table cell: numbers through `fmt_number`, lists item by item, the rest as text."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt_cell(v) for v in value) + "]"
    return fmt_number(value)
