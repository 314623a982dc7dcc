"""The milestone harness plugin (installed as the `pytest11` entry point `milestone`).

- area markers from the folder under assessments/ (assessments/cnn/... -> @pytest.mark.cnn);
- `--budget smoke|full` and the `experiment` fixture reading experiments/<area>.toml;
- every test seeded (random, NumPy, torch and TensorFlow when imported);
- BLAS/torch threads split across xdist workers so `-n 2` on 2 cores does not oversubscribe;
- the `evidence` fixture and the run folder the report is built from (reports/evidence.py).

The run folder is cleared lazily, when the first test reports: `pytest --co`, or a selection
that deselects everything, leaves the previous run's evidence alone. Evidence files carry a
session token so that lines of an earlier run can never mix with this one's.
"""
from __future__ import annotations

import os
import random
import sys
import time
import uuid
from pathlib import Path

import pytest

from implementations.config import load_experiment

ROOT = Path(__file__).resolve().parent.parent
AREAS = ("fundamentals", "cnn", "rnn", "transformers", "generative", "keras", "pytorch",
         "huggingface", "validation", "data", "harness")
DEFAULT_RUN_DIR = ROOT / "reports" / "runs" / "latest"
RUN_DIR_KEY = pytest.StashKey[Path]()  # the run folder; TOKEN: this session; STARTED: its time
TOKEN_KEY = pytest.StashKey[str]()
STARTED_KEY = pytest.StashKey[float]()
PREPARED_KEY = pytest.StashKey[bool]()

# Hub libraries must never reach for the network; set before any of them is imported.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("milestone")
    group.addoption("--budget", choices=("smoke", "full"), default="smoke",
                    help="experiment budget read from experiments/*.toml (default: smoke)")
    group.addoption("--seed", type=int, default=0, help="seed given to every test (default: 0)")
    group.addoption("--run-dir", default=str(DEFAULT_RUN_DIR),
                    help="where evidence and outcomes are written (default: reports/runs/latest)")
    group.addoption("--evidence-append", action="store_true",
                    help="keep the run folder's earlier evidence (used for the benchmark session)")


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _worker_count(config: pytest.Config) -> int:
    if _is_worker(config):
        return int(config.workerinput.get("workercount", 1))
    numprocesses = getattr(config.option, "numprocesses", None)
    return int(numprocesses) if isinstance(numprocesses, int) and numprocesses > 0 else 1


def _threads_per_process(config: pytest.Config) -> int:
    return max(1, (os.cpu_count() or 1) // _worker_count(config))


def pytest_configure(config: pytest.Config) -> None:
    threads = _threads_per_process(config)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:  # threadpoolctl is a core dependency; tolerate its absence in odd envs
        pass
    run_dir = Path(config.getoption("--run-dir")).resolve()
    config.stash[RUN_DIR_KEY] = run_dir
    if _is_worker(config):
        config.stash[TOKEN_KEY] = config.workerinput.get("milestone_token", "worker")
    else:
        config.stash[TOKEN_KEY] = uuid.uuid4().hex[:12]
        config.stash[STARTED_KEY] = time.time()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: every worker writes evidence under the controller's session token."""
    node.workerinput["milestone_token"] = node.config.stash[TOKEN_KEY]


def _prepare_run_dir(config: pytest.Config) -> None:
    """Once per session, when the first test reports: clear what earlier runs left, write run.json.

    Files this session already wrote (workers' figures and artifacts from module fixtures that ran
    before the first report arrived) are newer than the session start and are kept.
    """
    if config.stash.get(PREPARED_KEY, False):
        return
    config.stash[PREPARED_KEY] = True
    run_dir = config.stash[RUN_DIR_KEY]
    run_dir.mkdir(parents=True, exist_ok=True)
    if not config.getoption("--evidence-append"):
        _clear_earlier_run(run_dir, config.stash[TOKEN_KEY], config.stash[STARTED_KEY])
    _write_run_info(config, run_dir / "run.json")


def _clear_earlier_run(run_dir: Path, token: str, started: float) -> None:
    """Delete earlier sessions' files; folders stay (a worker may be about to write into one)."""
    for path in list(run_dir.rglob("*")):
        try:
            if path.is_dir():
                continue
            if path.name.startswith("evidence-") and path.suffix == ".jsonl":
                stale = not path.stem.endswith(token)
            else:
                stale = (path.parent == run_dir and path.name in ("outcomes.jsonl", "run.json")
                         or path.stat().st_mtime < started)
            if stale:
                path.unlink()
        except FileNotFoundError:  # a worker moved it meanwhile (atomic renames of caches)
            pass


def _write_run_info(config: pytest.Config, path: Path) -> None:
    """What the report header states about the run: budget, seed, workers, library versions."""
    import json
    import platform
    import time
    from importlib import metadata

    versions = {}
    for dist in ("numpy", "torch", "tensorflow-cpu", "keras", "transformers", "onnxruntime"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    # Which selection produced the run: the report states it (a green row under -m "not torch"
    # is not the same claim as under the full suite). An appended session (the benchmark one)
    # adds its selection to "sessions" and keeps the first session's header.
    session = {"markexpr": config.option.markexpr or "", "keyword": config.option.keyword or "",
               "args": [str(a) for a in config.args], "tox_env": os.environ.get("TOX_ENV_NAME", ""),
               "budget": config.getoption("--budget")}
    try:
        info = json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:  # a session killed mid-write: start the header afresh
        info = {}
    if not info:
        info = {"budget": config.getoption("--budget"), "seed": config.getoption("--seed"),
                "workers": _worker_count(config), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                "python": platform.python_version(), "cpus": os.cpu_count(), "versions": versions}
    info.setdefault("sessions", []).append(session)
    path.write_text(json.dumps(info, indent=1))




def area_of(path: Path) -> str | None:
    """The area a test file belongs to: its first folder under assessments/."""
    try:
        parts = path.resolve().relative_to(ROOT / "assessments").parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in AREAS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # torch is imported (seconds) only when a selected test needs a GPU.
    has_cuda = any(item.get_closest_marker("gpu") for item in items) and _cuda_available()
    for item in items:
        area = area_of(Path(item.fspath))
        if area:
            item.add_marker(getattr(pytest.mark, area))
        if item.get_closest_marker("gpu") and not has_cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; none on this machine"))


def _cuda_available() -> bool:
    if "torch" not in sys.modules:
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is None:
                return False
        except ValueError:
            return False
    import torch

    return bool(torch.cuda.is_available())


# ---------------------------------------------------------------- seeding and threads
@pytest.fixture(autouse=True)
def _seed_everything(request: pytest.FixtureRequest) -> int:
    seed = request.config.getoption("--seed")
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.manual_seed(seed)
        torch.set_num_threads(_threads_per_process(request.config))
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    return seed


@pytest.fixture
def single_thread(_seed_everything: int):
    """Run the test on one torch/BLAS thread (see assessments/threads.py); after seeding."""
    from assessments.threads import single_thread as one_thread

    with one_thread():
        yield


@pytest.fixture
def seed(_seed_everything: int) -> int:
    """The run's seed (`--seed`, default 0), already applied to every RNG."""
    return _seed_everything


# ---------------------------------------------------------------- budgets
@pytest.fixture(scope="session")
def budget(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--budget")


@pytest.fixture
def experiment(request: pytest.FixtureRequest, budget: str):
    """`experiment("mlp_digits")` -> settings and thresholds for this test's area and budget."""
    area = area_of(Path(request.node.fspath))

    def lookup(name: str, area: str | None = area) -> dict:
        if area is None:
            raise ValueError("experiment() outside assessments/<area>/ needs area=...")
        return load_experiment(area, name, budget)

    return lookup


# ---------------------------------------------------------------- evidence
@pytest.fixture
def evidence(request: pytest.FixtureRequest):
    """Record what this test proved: metrics, figures, tables, text (see reports/evidence.py)."""
    from reports.evidence import Evidence, append_jsonl

    config = request.config
    run_dir = config.stash[RUN_DIR_KEY]
    ev = Evidence(nodeid=request.node.nodeid, area=area_of(Path(request.node.fspath)) or "",
                  run_dir=run_dir)
    yield ev
    if not ev.is_empty():
        worker = config.workerinput["workerid"] if _is_worker(config) else "main"
        append_jsonl(run_dir / f"evidence-{worker}-{config.stash[TOKEN_KEY]}.jsonl", ev.to_json())


@pytest.fixture(scope="session")
def artifacts(request: pytest.FixtureRequest):
    """`artifacts("onnx")` -> `<run-dir>/artifacts/onnx/`, created: what one area hands to another."""
    run_dir = request.config.stash[RUN_DIR_KEY]

    def folder(kind: str) -> Path:
        path = run_dir / "artifacts" / kind
        path.mkdir(parents=True, exist_ok=True)
        return path

    return folder


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The controller writes one outcome line per test (xdist forwards workers' reports)."""
    config = _CONFIG.get("config")
    if config is None or _is_worker(config):
        return
    record = None
    if report.when == "call":
        record = {"outcome": report.outcome}
    elif report.when == "setup" and report.outcome != "passed":
        record = {"outcome": "error" if report.failed else report.outcome}
    elif report.when == "teardown" and report.failed:
        record = {"outcome": "error"}
    if record is None:
        return
    _prepare_run_dir(config)
    if report.skipped:
        longrepr = report.longrepr
        record["reason"] = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)).removeprefix("Skipped: ")
    if hasattr(report, "wasxfail"):
        record["outcome"] = "xfail" if report.skipped else "xpass"
        record["reason"] = report.wasxfail
    from reports.evidence import append_jsonl

    record.update(nodeid=report.nodeid, duration=round(report.duration, 3),
                  area=area_of(ROOT / report.nodeid.split("::")[0]) or "")
    append_jsonl(config.stash[RUN_DIR_KEY] / "outcomes.jsonl", record)


DESELECTED_KEY = pytest.StashKey[list]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    """Note what -m/-k deselected, so the report shows a row with deselected cases as partial."""
    if items:
        items[0].config.stash.setdefault(DESELECTED_KEY, []).extend(item.nodeid for item in items)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the deselected node ids, only when this session selected tests to run (`--co` or an
    empty selection leaves the run folder alone). Under xdist every worker collects the same
    items; the report reads the union of their files."""
    config = session.config
    deselected = config.stash.get(DESELECTED_KEY, [])
    if not deselected or not session.items or config.option.collectonly:
        return
    from reports.evidence import append_jsonl

    worker = config.workerinput["workerid"] if _is_worker(config) else "main"
    path = config.stash[RUN_DIR_KEY] / f"deselected-{worker}-{config.stash[TOKEN_KEY]}.jsonl"
    for nodeid in deselected:
        append_jsonl(path, {"nodeid": nodeid})


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config
