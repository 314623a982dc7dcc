"""`python -m reports build|gate|baseline`: render the report, gate a run on the baseline, write the baseline.

    python -m reports build [--run DIR] [--out DIR] [--requirements PATH] [--baseline PATH]
    python -m reports gate [--run DIR] [--baseline PATH] [--policy PATH]     exit 1 on a regression
    python -m reports baseline [--run DIR] [--baseline PATH]                 write the baseline
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.build import DEFAULT_OUT, DEFAULT_REQUIREMENTS, DEFAULT_RUN, RunMissing, build_report, check_run
from reports.gate import DEFAULT_BASELINE, DEFAULT_POLICY, BaselineMissing, gate, write_baseline


def _build(args: argparse.Namespace) -> int:
    if not args.requirements.is_file():
        print(f"error: no requirement map at {args.requirements}", file=sys.stderr)
        return 2
    report = build_report(args.run, args.out, args.requirements, baseline=args.baseline)
    print(f"report written to {report.index}")
    print(report.summary)
    if report.gate is not None:
        print(report.gate.summary())
    return 0


def _gate(args: argparse.Namespace) -> int:
    check_run(args.run)
    try:
        result = gate(args.run, args.baseline, args.policy)
    except BaselineMissing as e:
        print(f"gate: {e}", file=sys.stderr)
        return 2
    for c in sorted(result.checks, key=lambda c: (not c.failed, c.kind, c.key)):
        if c.failed or args.verbose:
            now = "—" if c.current is None else f"{c.current:.4g}"
            print(f"{c.verdict.upper() if c.failed else c.verdict:>24}  {c.kind} {c.key}: baseline {c.baseline:.4g} "
                  f"-> {now} ({c.direction} is better; may worsen by {c.allowed:.3g}){'; ' + c.note if c.note else ''}")
    print(result.summary())
    return 0 if result.passed else 1


def _baseline(args: argparse.Namespace) -> int:
    check_run(args.run)
    doc = write_baseline(args.run, args.baseline)
    print(f"baseline written to {args.baseline}: {len(doc['metrics'])} metrics, "
          f"{len(doc['benchmarks'])} benchmark ratios (budget {doc['run'].get('budget')})")
    if not doc["benchmarks"]:
        print("note: the run has no benchmark ratios (no benchmarks.json): run `make test` for both sessions")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="render a run folder into an HTML report")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help="where the report goes; replaced on each build (default: reports/out)")
    build.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS,
                       help="the requirement map (default: assessments/requirements.toml)")
    build.set_defaults(func=_build)
    check = commands.add_parser("gate", help="compare a run with the baseline; exit 1 on a regression")
    check.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help="tolerances (default: reports/gate.toml)")
    check.add_argument("-v", "--verbose", action="store_true", help="print every comparison, not only failures")
    check.set_defaults(func=_gate)
    base = commands.add_parser("baseline", help="write the baseline from a run")
    base.set_defaults(func=_baseline)
    for sub in (build, check, base):
        sub.add_argument("--run", type=Path, default=DEFAULT_RUN,
                         help="the run folder pytest wrote (default: reports/runs/latest)")
        sub.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE,
                         help="the committed baseline (default: reports/baseline.json)")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RunMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a malformed requirements.toml or gate.toml, or an --out we will not clear
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
