"""Run the mutant catalogue: `python -m assessments.harness.mutants --json out.json [NAME ...]`.

One process runs everything in-process with `pytest.main`, one short session per mutant, so
torch and the test modules are imported once:
1. for each mutant, plant it, run its few tests (-x: the first failure is enough), restore it.
A mutant is caught when a targeted test fails; an exception raised inside the wrong version
itself is reported as `broken` (it does not run, which proves nothing). Mutants whose `needs`
are not importable here are `not run`. Hypothesis neither shrinks nor explains (a failing
example is enough) and keeps no example database.
3. a control session runs, with nothing planted, each test that caught a mutant (the very
   parametrized case): each must pass, or its catch proves nothing (this also checks that
   every mutant was removed again).
Exit status 0 when every mutant that ran was caught and the control passed, else 1.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# A failure raised in the catalogue itself means a broken mutant, not a caught one.
CATALOGUE_FILES = {str(path) for path in Path(__file__).parent.glob("*.py")}


class Recorder:
    """A pytest plugin that keeps each test's outcome and the first line of each failure."""

    def __init__(self) -> None:
        self.failures: list[dict[str, str]] = []
        self.passed: list[str] = []
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
            self.failures.append({"test": report.nodeid, "when": report.when,
                                  "message": " ".join(message.split())[:300],
                                  "raised_in": str(getattr(crash, "path", ""))})
        elif report.when == "call" and report.passed:
            self.passed.append(report.nodeid)
        elif report.skipped:
            self.skipped.append(report.nodeid)


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout("the mutant's tests ran past the runner's time limit")


def run_session(tests: list[str], run_dir: Path, timeout: int) -> tuple[int, Recorder, float]:
    import pytest

    recorder = Recorder()
    # no:unraisableexception: its gc.collect() at every session end costs more than most tests;
    # no:terminal: no output, and no .hypothesis/patches files written for the failures we plant.
    args = ["-p", "no:xdist", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-p", "no:terminal",
            "-x", "-W", "ignore::pytest.PytestAssertRewriteWarning",
            "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "--budget=smoke",
            f"--run-dir={run_dir}", *tests]
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout)
    try:
        rc = int(pytest.main(args, plugins=[recorder]))
    finally:
        signal.alarm(0)
    return rc, recorder, time.perf_counter() - start


def classify(rc: int, recorder: Recorder) -> str:
    if recorder.failures:
        first = recorder.failures[0]
        if first["message"].split(":")[0].endswith("Timeout"):
            return "timeout"
        return "broken" if first["raised_in"] in CATALOGUE_FILES else "caught"
    if rc == 0 and recorder.passed:
        return "survived"
    return "error"  # no test ran (a wrong node id), or pytest itself failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--timeout", type=int, default=180, help="seconds per session (default 180)")
    parser.add_argument("--no-control", action="store_true", help="skip the clean control session")
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    from hypothesis import Phase, settings

    # No example database (a mutant's failing examples must not be replayed into later runs), no
    # shrinking or explaining: the first failing example is all the catalogue needs.
    settings.register_profile("mutants", database=None,
                              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target))
    settings.load_profile("mutants")
    from assessments.harness.mutants import catalogue, planted

    mutants = catalogue()
    unknown = set(args.names) - {m.name for m in mutants}
    if unknown:
        parser.error(f"no such mutants: {sorted(unknown)}")
    if args.names:
        mutants = [m for m in mutants if m.name in args.names]
    start = time.perf_counter()
    results, control = [], None
    runnable = [m for m in mutants if not m.missing()]
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        run_dir = Path(tmp) / "run"
        for m in mutants:
            entry = {"name": m.name, "area": m.area, "bug": m.bug, "target": m.target, "tests": list(m.tests)}
            if m.missing():
                entry.update(status="not run", reason=f"needs {', '.join(m.missing())}")
            else:
                with planted(m):
                    rc, rec, seconds = run_session(list(m.tests), run_dir, args.timeout)
                first = rec.failures[0] if rec.failures else {}
                entry.update(status=classify(rc, rec), rc=rc, caught_by=first.get("test"),
                             message=first.get("message"), passed=len(rec.passed), seconds=round(seconds, 2))
            results.append(entry)
            print(f"{entry['status']:>9}  {m.name}  {entry.get('caught_by') or entry.get('reason') or ''}",
                  flush=True)
        catchers = sorted({r["caught_by"] for r in results if r["status"] == "caught"})
        if catchers and not args.no_control:
            rc, rec, seconds = run_session(catchers, run_dir, args.timeout * 3)
            control = {"tests": catchers, "rc": rc, "passed": len(rec.passed), "failures": rec.failures,
                       "seconds": round(seconds, 2)}
            print(f"control: rc={rc}, {len(rec.passed)} of {len(catchers)} passed without a mutant, "
                  f"{seconds:.1f} s", flush=True)
    ran = [r for r in results if r["status"] != "not run"]
    summary = {
        "total": len(results), "run": len(ran), "caught": sum(r["status"] == "caught" for r in ran),
        "survived": [r["name"] for r in ran if r["status"] == "survived"],
        "broken": [r["name"] for r in ran if r["status"] in ("broken", "error", "timeout")],
        "not_run": [r["name"] for r in results if r["status"] == "not run"],
        "control": control, "seconds": round(time.perf_counter() - start, 1), "mutants": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    print(f"caught {summary['caught']}/{summary['run']} ({summary['total']} in the catalogue, "
          f"{len(summary['not_run'])} not run) in {summary['seconds']} s", flush=True)
    control_ok = args.no_control or (control is not None and control["rc"] == 0
                                     and control["passed"] == len(control["tests"]))
    return 0 if control_ok and summary["caught"] == summary["run"] else 1


if __name__ == "__main__":
    sys.exit(main())
