"""Start, drive and stop one private TorchServe instance.

`start` writes DIR/config.properties (inference, management, metrics and both gRPC addresses on
127.0.0.1 with free ports, token auth disabled, model API enabled, a 1 MB request limit, raw
request bodies for the handler), launches `torchserve --start` with TMPDIR=DIR/tmp (so its PID
file and worker sockets are private to this instance, not /tmp's shared ones) and logs under
DIR/logs, waits for /ping, registers the model (batch size, max batch delay, workers) and
returns when it is READY, or raises with the log's last lines after a bounded wait. The Java
server's PID goes to DIR/server.json; `stop` signals exactly that PID (then its process group's
leftover workers), never a process found by name.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

__all__ = ["Server", "start", "stop", "register", "free_port", "log_tail", "wait_ready", "is_alive", "children"]

TORCHSERVE = Path(sys.executable).with_name("torchserve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """What `start` prints as one JSON line (and writes to DIR/server.json)."""

    inference: str
    management: str
    metrics: str
    model: str
    pid: int
    run_dir: str
    cold_start_s: float

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def log_tail(run_dir: Path, lines: int = 40) -> str:
    out = []
    for name in ("logs/stdout.log", "logs/ts_log.log", "logs/model_log.log"):
        p = Path(run_dir) / name
        if p.exists():
            out.append(f"--- {name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:]))
    return "\n".join(out) or "(no logs written)"


def _write_config(run_dir: Path, store: Path) -> dict[str, str]:
    ports = {k: free_port() for k in ("inference", "management", "metrics", "grpc_inference", "grpc_management")}
    urls = {k: f"http://127.0.0.1:{ports[k]}" for k in ("inference", "management", "metrics")}
    lines = [
        f"inference_address={urls['inference']}",
        f"management_address={urls['management']}",
        f"metrics_address={urls['metrics']}",
        "grpc_inference_address=127.0.0.1", f"grpc_inference_port={ports['grpc_inference']}",
        "grpc_management_address=127.0.0.1", f"grpc_management_port={ports['grpc_management']}",
        # the frontend talks to workers over Unix sockets named by this port, under TMPDIR
        f"initial_worker_port={free_port()}",
        f"model_store={store}",
        "disable_token_authorization=true",
        "enable_model_api=true",
        "metrics_mode=prometheus",
        "decode_input_request=false",  # the handler parses (and rejects) bodies itself
        "max_request_size=1048576",  # 1 MB: a 28x28 JSON image is ~4 KB; bigger is refused (413)
        "default_workers_per_model=1",
        "number_of_netty_threads=4",
        "job_queue_size=1000",
        "default_response_timeout=30",
        "install_py_dep_per_model=false",
    ]
    (run_dir / "config.properties").write_text("\n".join(lines) + "\n")
    return urls


def _get(url: str, timeout: float = 2.0) -> requests.Response | None:
    try:
        return requests.get(url, timeout=timeout)
    except requests.RequestException:
        return None


def register(management: str, mar: str, model_name: str, batch_size: int = 1, max_batch_delay_ms: int = 5,
             workers: int = 1, timeout_s: float = 120) -> dict:
    """Register STORE/<mar> as `model_name` and wait (synchronously) for its workers."""
    r = requests.post(f"{management}/models", params={
        "url": mar, "model_name": model_name, "batch_size": batch_size, "max_batch_delay": max_batch_delay_ms,
        "initial_workers": workers, "synchronous": "true", "response_timeout": 30}, timeout=timeout_s)
    if r.status_code != 200:
        raise RuntimeError(f"registering {mar} as {model_name} failed: {r.status_code} {r.text}")
    return r.json()


def wait_ready(management: str, model_name: str, timeout_s: float, version: str | None = None) -> None:
    """Until every worker of the model (version) reports READY; bounded in time."""
    url = f"{management}/models/{model_name}" + (f"/{version}" if version else "")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = _get(url)
        if r is not None and r.status_code == 200:
            workers = [w for m in r.json() for w in m.get("workers", [])]
            if workers and all(w.get("status") == "READY" for w in workers):
                return
        time.sleep(0.2)
    raise TimeoutError(f"{model_name} not READY after {timeout_s:.0f} s")


def start(store: Path, run_dir: Path, model_name: str = "fashion_cnn", mar: str | None = None,
          batch_size: int = 8, max_batch_delay_ms: int = 5, workers: int = 1,
          timeout_s: float = 120) -> Server:
    """Start TorchServe on STORE, register `mar` (default: the newest *.mar) as `model_name`."""
    store, run_dir = Path(store).resolve(), Path(run_dir).resolve()
    mars = sorted(store.glob("*.mar"))
    if mar is None:
        if not mars:
            raise FileNotFoundError(f"no .mar archive in {store}; run `python -m deployment.torchserve archive`")
        mar = mars[-1].name
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "tmp").mkdir(exist_ok=True)
    if (run_dir / "server.json").exists():
        raise RuntimeError(f"{run_dir}/server.json exists: a server may still run there; stop it first")
    urls = _write_config(run_dir, store)
    env = dict(os.environ, TMPDIR=str(run_dir / "tmp"), TEMP=str(run_dir / "tmp"),
               LOG_LOCATION=str(run_dir / "logs"), METRICS_LOCATION=str(run_dir / "logs"),
               TS_DISABLE_SYSTEM_METRICS="true", OMP_NUM_THREADS="1")
    t0 = time.monotonic()
    with open(run_dir / "logs" / "stdout.log", "ab") as log:
        launcher = subprocess.run([str(TORCHSERVE), "--start", "--ncs", "--disable-token-auth", "--enable-model-api",
                                   "--ts-config", str(run_dir / "config.properties"), "--model-store", str(store)],
                                  cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=60)
    pid_file = run_dir / "tmp" / ".model_server.pid"
    if launcher.returncode != 0 or not pid_file.exists():
        raise RuntimeError(f"torchserve --start failed (rc {launcher.returncode}):\n{log_tail(run_dir)}")
    pid = int(pid_file.read_text().split()[0])
    server = Server(urls["inference"], urls["management"], urls["metrics"], model_name, pid, str(run_dir), 0.0)
    (run_dir / "server.json").write_text(server.to_json())
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            r = _get(f"{urls['inference']}/ping")
            if r is not None and r.status_code == 200:
                break
            if not is_alive(pid):
                raise RuntimeError(f"TorchServe (PID {pid}) exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"TorchServe did not answer /ping within {timeout_s:.0f} s")
            time.sleep(0.2)
        register(urls["management"], mar, model_name, batch_size, max_batch_delay_ms, workers,
                 timeout_s=max(5.0, deadline - time.monotonic()))
        wait_ready(urls["management"], model_name, max(5.0, deadline - time.monotonic()))
    except Exception as e:
        tail = log_tail(run_dir)
        stop(run_dir)
        raise RuntimeError(f"TorchServe failed to become READY: {e}\n{tail}") from e
    server.cold_start_s = time.monotonic() - t0
    (run_dir / "server.json").write_text(server.to_json())
    return server


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Direct child PIDs (the Python workers the Java frontend spawned), from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def stop(run_dir: Path, timeout_s: float = 30) -> bool:
    """Stop the server whose PID DIR/server.json records (SIGTERM, then SIGKILL); its worker
    processes (children of that PID) too. Returns False when nothing was running."""
    info = Path(run_dir) / "server.json"
    if not info.exists():
        return False
    pid = json.loads(info.read_text())["pid"]
    was_alive = is_alive(pid)
    workers = children(pid) if was_alive else []
    if was_alive:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_alive(pid):
            os.kill(pid, signal.SIGKILL)
    for w in workers:
        if is_alive(w):
            os.kill(w, signal.SIGKILL)
    info.unlink()
    return was_alive
