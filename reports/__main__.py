"""`python -m reports build [--run DIR] [--out DIR] [--requirements PATH]`: render the report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.build import DEFAULT_OUT, DEFAULT_REQUIREMENTS, DEFAULT_RUN, RunMissing, build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="render a run folder into an HTML report")
    build.add_argument("--run", type=Path, default=DEFAULT_RUN,
                       help="the run folder pytest wrote (default: reports/runs/latest)")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help="where the report goes; replaced on each build (default: reports/out)")
    build.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS,
                       help="the requirement map (default: assessments/requirements.toml)")
    args = parser.parse_args(argv)
    if not args.requirements.is_file():
        print(f"error: no requirement map at {args.requirements}", file=sys.stderr)
        return 2
    try:
        report = build_report(args.run, args.out, args.requirements)
    except RunMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a malformed requirements.toml, or an --out we will not clear
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"report written to {report.index}")
    print(report.summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
