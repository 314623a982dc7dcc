"""Machinery shared by the PyTorch assessments: torchrun jobs with bounded waits; latency
statistics, the batching-sweep table and the figures of the serving tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))


def module_experiment(request, name: str) -> dict:
    """`experiment(name)` for module-scoped fixtures (the `experiment` fixture is per test)."""
    from implementations.config import load_experiment

    return load_experiment("pytorch", name, request.config.getoption("--budget"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Job:
    """A torchrun job started by `launch`; `wait` bounds it and kills its process group.
    A watcher thread notes the moment it ends, whenever `wait` is called."""

    name: str
    proc: subprocess.Popen
    log: Path
    started: float
    returncode: int | None = None
    seconds: float | None = None
    ended_at: float | None = None  # wall clock (time.time()) when the process ended

    def __post_init__(self) -> None:
        self._ended = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        self.proc.wait()
        self.ended_at, self.seconds = time.time(), time.monotonic() - self.started
        self._ended.set()

    def wait(self, timeout: float) -> Job:
        if not self._ended.wait(timeout=max(1.0, timeout - (time.monotonic() - self.started))):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this job started, by its PID
            self._ended.wait(timeout=30)
            self.returncode = None
            return self
        self.returncode = self.proc.returncode
        return self

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


def launch(name: str, nproc: int, args: list[str], log_dir: Path) -> Job:
    """`torchrun --nproc_per_node=nproc -m implementations.frameworks.torch.ddp_train *args` on
    127.0.0.1 with a free rendezvous port, in its own session (so it can be killed whole)."""
    log = log_dir / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [TORCHRUN, f"--nproc_per_node={nproc}", "--nnodes=1", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{free_port()}", f"--rdzv-id={name}-{os.getpid()}",
           "--max-restarts=0", "-m", "implementations.frameworks.torch.ddp_train", *args]
    # gloo's sockets on the loopback interface only
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", DDP_TIMEOUT_S="60",
               GLOO_SOCKET_IFNAME="lo")
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    return Job(name, proc, log, time.monotonic())


def crashed_at_teardown(job: Job) -> bool:
    """A job whose rank died by a signal after training (gloo's teardown abort), not by an error."""
    text = job.output
    return (job.returncode not in (0, None) and "terminate called without an active exception" in text
            and ("SIGSEGV" in text or "SIGABRT" in text))


def percentiles(latencies_s: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    ms = 1000 * np.asarray(latencies_s, dtype=np.float64)
    return {f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)}


def sweep_rows(sweep: dict) -> list[dict]:
    """One row per server batch size of the batching sweep (LoadResults keyed by batch size)."""
    rows = []
    for bs, res in sorted(sweep.items()):
        rows.append({"batch_size": bs, **percentiles(res.latencies_s), "throughput": res.throughput,
                     "requests": res.sent, "lost_or_wrong": res.lost + res.wrong,
                     "mean_batch_seen": float(np.mean(res.batch_requests)) if res.batch_requests else 0.0,
                     "max_batch_seen": max(res.batch_requests, default=0)})
    return rows


def latency_histogram(latencies_s, stats: dict[str, float]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(1000 * np.asarray(latencies_s), bins=40, color="#4c72b0")
    for name, value in stats.items():
        ax.axvline(value, ls="--", lw=1, color="k")
        ax.text(value, ax.get_ylim()[1] * 0.9, name.split("_")[0], rotation=90, va="top", ha="right", fontsize=8)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("requests")
    ax.set_title("TorchServe latency under concurrent load")
    return fig


def throughput_figure(rows: list[dict]):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    bs = [r["batch_size"] for r in rows]
    ax.plot(bs, [r["throughput"] for r in rows], "o-", label="throughput (req/s)")
    ax.set_xlabel("server batch size")
    ax.set_ylabel("requests / s")
    ax2 = ax.twinx()
    ax2.plot(bs, [r["p50_ms"] for r in rows], "s--", color="#dd8452", label="p50 latency (ms)")
    ax2.set_ylabel("p50 latency (ms)")
    ax.set_xticks(bs)
    ax.set_title("Batching trade-off")
    fig.legend(loc="lower right", bbox_to_anchor=(0.86, 0.16), fontsize=8)
    return fig
