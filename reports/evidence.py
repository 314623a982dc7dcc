"""The evidence store: what each test proved, written as JSON lines under a run folder.

Each pytest process (the controller and every xdist worker) appends to its own file, so
parallel runs never interleave writes. The report builder (`reports.build`) reads them back.

Layout of a run folder:
    outcomes.jsonl            one line per test: nodeid, outcome, duration, skip reason
    evidence-<worker>.jsonl   one line per test that recorded evidence
    figures/<slug>.png        the figures those lines name
    benchmarks.json           pytest-benchmark's JSON, when the benchmark session ran
    deselected[-<token>].jsonl  optional: {"nodeid": ...} per test a session deselected (-m/-k)
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Direction = Literal["higher", "lower", "none"]


def slug(text: str) -> str:
    """A file-name-safe version of a test id or figure name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150]


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays to JSON-friendly Python values; NaN/inf as strings."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass
class Metric:
    name: str
    value: float
    unit: str = ""
    threshold: float | None = None
    direction: Direction = "none"
    key: bool = False

    @property
    def passed(self) -> bool | None:
        """Whether the value meets its threshold; None when there is no threshold."""
        if self.threshold is None or self.direction == "none":
            return None
        if self.direction == "higher":
            return self.value >= self.threshold
        return self.value <= self.threshold


@dataclass
class Evidence:
    """What one test proved. Use through the `evidence` fixture:

        evidence.metric("test_accuracy", acc, threshold=0.97, direction="higher", key=True)
        evidence.figure("learning_curve", fig)
        evidence.table("per_class", rows)          # list of dicts, or a pandas DataFrame
        evidence.text("Why this number matters ...")
    """

    nodeid: str
    area: str
    run_dir: Path
    metrics: list[Metric] = field(default_factory=list)
    figures: list[dict[str, str]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def metric(self, name: str, value: float, unit: str = "", threshold: float | None = None,
               direction: Direction = "none", key: bool = False) -> float:
        """Record a number; `key=True` makes it the one shown in the requirement matrix."""
        if direction not in ("higher", "lower", "none"):
            raise ValueError(f"direction must be 'higher', 'lower' or 'none', got {direction!r}")
        value = float(value)
        self.metrics.append(Metric(name, value, unit, None if threshold is None else float(threshold),
                                   direction, key))
        return value

    def figure(self, name: str, fig: Any, caption: str = "") -> Path:
        """Save a matplotlib figure as PNG under the run folder and close it."""
        import matplotlib.pyplot as plt

        path = self.run_dir / "figures" / f"{slug(self.nodeid)}-{slug(name)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        self.figures.append({"name": name, "file": f"figures/{path.name}", "caption": caption})
        return path

    def table(self, name: str, rows: Any) -> None:
        """Record a table: a list of dicts (one per row) or a pandas DataFrame."""
        if hasattr(rows, "to_dict"):
            rows = rows.to_dict(orient="records")
        rows = [dict(r) for r in rows]
        self.tables.append({"name": name, "rows": _plain(rows)})

    def text(self, text: str) -> None:
        self.texts.append(str(text))

    def is_empty(self) -> bool:
        return not (self.metrics or self.figures or self.tables or self.texts)

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "area": self.area,
            "metrics": [_plain(m.__dict__) for m in self.metrics],
            "figures": self.figures,
            "tables": self.tables,
            "texts": self.texts,
        }


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(_plain(record)) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
