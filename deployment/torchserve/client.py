"""A small REST client for the served model, and a bounded concurrent load generator.

`encode(images)` gives the request body the handler expects; `predict` posts it;
`run_load` drives `clients` threads until `max_requests` are sent or `max_seconds` pass
(whichever first), checks every answer with `check`, and reports latencies and losses.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import requests

__all__ = ["encode", "predict", "LoadResult", "run_load", "metric_total"]

JSON = {"Content-Type": "application/json"}


def encode(images: np.ndarray) -> bytes:
    """(n, 28, 28) pixels in [0, 255] -> b'{"instances": [...]}' (integers stay integers)."""
    arr = np.asarray(images)
    values = arr.astype(int).tolist() if np.issubdtype(arr.dtype, np.integer) else arr.tolist()
    return json.dumps({"instances": values}).encode()


def predict(inference: str, model: str, body: bytes, version: str | None = None,
            headers: dict[str, str] | None = None, session: requests.Session | None = None,
            timeout: float = 30) -> requests.Response:
    url = f"{inference}/predictions/{model}" + (f"/{version}" if version else "")
    return (session or requests).post(url, data=body, headers={**JSON, **(headers or {})}, timeout=timeout)


@dataclass
class LoadResult:
    """latencies_s of answered requests; lost: no answer (error/timeout); wrong: answered
    200 but `check` failed, or a non-200 status; batch_requests: the batch each answer rode in."""

    sent: int = 0
    latencies_s: list[float] = field(default_factory=list)
    lost: int = 0
    wrong: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    batch_requests: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_load(inference: str, model: str, bodies: Sequence[bytes], check: Callable[[int, dict], bool],
             clients: int = 32, max_requests: int = 2000, max_seconds: float = 20.0,
             timeout: float = 30.0) -> LoadResult:
    """Each client posts bodies[i % len(bodies)] for the next free i, back to back, and
    check(i % len(bodies), reply) must hold. Stops sending at max_requests or max_seconds."""
    result, lock = LoadResult(), threading.Lock()
    counter = iter(range(max_requests))
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
                if i is None:
                    return
                result.sent += 1
            k = i % len(bodies)
            t0 = time.perf_counter()
            try:
                r = predict(inference, model, bodies[k], session=session, timeout=timeout)
            except requests.RequestException as e:
                with lock:
                    result.lost += 1
                    result.errors.append(repr(e)[:200])
                continue
            dt = time.perf_counter() - t0
            ok = False
            if r.status_code == 200:
                reply = r.json()
                ok = check(k, reply)
            with lock:
                result.latencies_s.append(dt)
                result.statuses[r.status_code] = result.statuses.get(r.status_code, 0) + 1
                if r.status_code == 200:
                    result.batch_requests.append(int(reply.get("batch_requests", 0)))
                if not ok:
                    result.wrong += 1
                    result.errors.append(f"{r.status_code}: {r.text[:200]}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max_seconds + timeout + 5)
    result.elapsed_s = time.monotonic() - t0
    hung = sum(t.is_alive() for t in threads)
    if hung:
        result.errors.append(f"{hung} client threads still waiting after the bound")
    return result


def metric_total(metrics: str, name: str, model: str) -> float:
    """Sum of a Prometheus counter/gauge `name` over the series of `model` at METRICS/metrics."""
    text = requests.get(f"{metrics}/metrics", params={"name[]": name}, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'model_name="{model}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
