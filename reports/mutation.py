"""The mutation-testing result that `make mutation` writes (reports/mutation.json), for its page.

mutmut mutates implementations/fundamentals and the fundamentals assessments judge each mutant.
The JSON holds the counts by status, the score (killed / checked), the goal, every survivor with
its diff and either the later test that kills it (`killed_by`) or why it is equivalent
(`explanation`), and `after`: the score once the survivors were re-run against the added tests.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MUTATION = Path(__file__).resolve().parent / "mutation.json"


@dataclass
class MutationResult:
    tool: str
    seconds: float
    finished: str
    counts: dict[str, int]
    killed: int
    checked: int
    score: float
    goal: float
    after_score: float | None
    survivors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unexplained(self) -> list[dict[str, Any]]:
        """Survivors that no added test kills and that carry no equivalence argument."""
        return [s for s in self.survivors if not s.get("killed_by") and not s.get("explanation")]


def load_mutation(path: Path = DEFAULT_MUTATION) -> MutationResult | None:
    """The recorded result, or None when `make mutation` has not been run (no file)."""
    path = Path(path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return MutationResult(
            tool=str(data["tool"]), seconds=float(data["seconds"]), finished=str(data.get("finished", "")),
            counts={str(k): int(v) for k, v in data["counts"].items()}, killed=int(data["killed"]),
            checked=int(data["checked"]), score=float(data["score"]), goal=float(data["goal"]),
            after_score=float(data["after"]["score"]) if data.get("after") else None,
            survivors=list(data.get("survivors", [])))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a mutation result as `make mutation` writes it ({err!r})") from err
