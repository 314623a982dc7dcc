"""Experiment settings: experiments/<area>.toml, shared by assessments and notebooks.

A table `[name]` holds shared keys; `[name.smoke]` and `[name.full]` override them per budget.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
BUDGETS = ("smoke", "full")


def load_experiment(area: str, name: str, budget: str = "smoke") -> dict:
    """Settings and thresholds of experiment `name` in `area` for `budget`."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    path = EXPERIMENTS_DIR / f"{area}.toml"
    if not path.exists():
        raise FileNotFoundError(f"no experiment file {path} (expected one TOML per area)")
    table = tomllib.loads(path.read_text()).get(name)
    if table is None:
        raise KeyError(f"{path.name} has no [{name}] table")
    merged = {k: v for k, v in table.items() if k not in BUDGETS}
    merged.update(table.get(budget, {}))
    merged["budget"] = budget
    return merged
