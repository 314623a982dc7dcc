"""Deploying the trained model with TensorFlow Serving (requirement keras.4).

The Fashion-MNIST model (conftest.py `fashion_run`) is exported in TF Serving's layout to
`<run-dir>/artifacts/tf_serving/fashion/{1,2}/` (version 1: the weights after epoch 1; version 2:
the restored best weights) with a models.config serving both (a `specific` version policy).
The same client tests run against the real `tensorflow_model_server` when it is on PATH, and
everywhere against the documented stand-in (deployment/tf_serving/, werkzeug + tf.saved_model.load)
started as `python -m deployment.tf_serving --rest_api_port=... --model_config_file=...`.
"""
import json
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="needs TensorFlow (pip install -e '.[tensorflow]')")

from assessments.keras._helpers import free_port, stop, subprocess_env, wait_for  # noqa: E402
from deployment.tf_serving.client import TFServingClient, TFServingError  # noqa: E402
from deployment.tf_serving.config import ModelConfig, read_models_config, write_models_config  # noqa: E402
from implementations.config import load_experiment  # noqa: E402

pytestmark = [pytest.mark.tensorflow, pytest.mark.serving]
ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("stand-in", "tensorflow_model_server")


@dataclass
class Exported:
    cfg: dict
    base: Path             # <artifacts>/tf_serving/<model>
    config_file: Path      # <artifacts>/tf_serving/models.config
    probe: np.ndarray      # (64, 28, 28) float32 test images
    expected: dict         # version -> in-process softmax probabilities (64, 10)
    cli: subprocess.Popen  # saved_model_cli show of version 2, started at export (runs beside the server's start)

    def cli_output(self) -> str:
        """saved_model_cli's stdout (waited for once, within cli_timeout)."""
        if not hasattr(self, "_cli_out"):
            out, err = self.cli.communicate(timeout=self.cfg["cli_timeout"])
            assert self.cli.returncode == 0, err[-2000:]
            self._cli_out = out
        return self._cli_out


@pytest.fixture(scope="module")
def exported(fashion_run, artifacts, budget):
    import keras

    from deployment.tf_serving.export import export_for_serving
    from implementations.frameworks.keras.models import row_transformer

    cfg = load_experiment("keras", "serving", budget)
    root = artifacts("tf_serving")
    base = root / cfg["model_name"]
    shutil.rmtree(base, ignore_errors=True)  # versions are immutable: a new run exports afresh
    c = fashion_run.cfg
    first = row_transformer(d_model=c["d_model"], num_heads=c["num_heads"], num_layers=c["num_layers"],
                            dim_feedforward=c["dim_feedforward"])
    first.load_weights(fashion_run.folder / "weights" / "epoch_01.weights.h5")
    models = {1: first, 2: fashion_run.load()}
    probe = fashion_run.data.x_test[:64]
    expected = {}
    for version, model in models.items():
        export_for_serving(model, root, cfg["model_name"], version)
        expected[version] = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(probe, verbose=0)))
    config_file = write_models_config(root / "models.config", [ModelConfig(cfg["model_name"], str(base), "specific",
                                                                           versions=[1, 2])])
    cli = subprocess.Popen([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                            str(base / "2"), "--tag_set", "serve", "--signature_def", "serving_default"],
                           env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield Exported(cfg, base, config_file, probe, expected, cli)
    finally:
        stop(cli)


@dataclass
class Server:
    kind: str
    client: TFServingClient
    proc: subprocess.Popen


@pytest.fixture(scope="module", params=SERVERS)
def server(request, exported):
    cfg, port = exported.cfg, free_port()
    if request.param == "stand-in":
        cmd = [sys.executable, "-m", "deployment.tf_serving", f"--rest_api_port={port}",
               f"--model_config_file={exported.config_file}", f"--max_request_bytes={cfg['max_request_bytes']}"]
    else:
        binary = shutil.which("tensorflow_model_server")
        if binary is None:
            pytest.skip("tensorflow_model_server is not on PATH (no Debian or PyPI package; DESIGN.md): "
                        "the same tests ran against the stand-in")
        cmd = [binary, f"--port={free_port()}", f"--rest_api_port={port}",
               f"--model_config_file={exported.config_file}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = TFServingClient(f"http://127.0.0.1:{port}")

    def ready() -> bool:
        states = client.status(cfg["model_name"])["model_version_status"]
        return {s["version"] for s in states if s["state"] == "AVAILABLE"} == {"1", "2"}

    try:
        try:
            wait_for(ready, proc, cfg["start_timeout"], request.param)
        except (RuntimeError, TimeoutError):
            proc.terminate()
            raise RuntimeError(f"{request.param} did not start: {proc.communicate(timeout=10)[1][-3000:]}") from None
        yield Server(request.param, client, proc)
    finally:
        stop(proc)


def test_export_layout(exported):
    """TF Serving's layout and config: <model>/<version>/saved_model.pb + variables/, both versions
    in models.config under a specific version policy."""
    for version in (1, 2):
        d = exported.base / str(version)
        assert (d / "saved_model.pb").is_file() and (d / "variables" / "variables.index").is_file()
        assert list((d / "variables").glob("variables.data-*"))
    (parsed,) = read_models_config(exported.config_file)
    assert (parsed.name, parsed.policy, parsed.versions) == ("fashion", "specific", [1, 2])
    assert Path(parsed.base_path) == exported.base.resolve()


def _saved_model_cli_show(exported: Exported) -> dict:
    """TensorFlow's saved_model_cli description of serving_default, parsed."""
    out = exported.cli_output()
    tensors = re.findall(r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: \(([^)]*)\)", out)
    method = re.search(r"Method name is: (\S+)", out)
    assert tensors and method, out
    return {"tensors": {(kind, name): (dtype, [int(s) for s in shape.replace(" ", "").split(",") if s])
                        for kind, name, dtype, shape in tensors}, "method": method.group(1)}


def test_signature_matches_saved_model_cli(server, exported, evidence):
    cli = _saved_model_cli_show(exported)
    meta = server.client.metadata(exported.cfg["model_name"], version=2)
    assert meta["model_spec"]["name"] == "fashion" and meta["model_spec"]["version"] == "2"
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    served = {(kind, name): (info["dtype"], [int(d["size"]) for d in info["tensor_shape"]["dim"]])
              for kind in ("inputs", "outputs") for name, info in sig[kind].items()}
    evidence.table("serving_default_signature", [{"tensor": f"{k}['{n}']", "dtype": d, "shape": s}
                                                 for (k, n), (d, s) in sorted(cli["tensors"].items())])
    assert served == cli["tensors"]
    assert sig["method_name"] == cli["method"] == "tensorflow/serving/predict"
    assert cli["tensors"] == {("inputs", "images"): ("DT_FLOAT", [-1, 28, 28]),
                              ("outputs", "probabilities"): ("DT_FLOAT", [-1, 10]),
                              ("outputs", "class_ids"): ("DT_INT64", [-1])}


def test_model_status(server):
    status = server.client.status("fashion")["model_version_status"]
    assert sorted(s["version"] for s in status) == ["1", "2"]
    assert all(s["state"] == "AVAILABLE" and s["status"]["error_code"] == "OK" for s in status)
    (one,) = server.client.status("fashion", version=1)["model_version_status"]
    assert one["version"] == "1"


def _check_answer(answer: dict, expected: np.ndarray, row: bool) -> float:
    """Max |served - in-process| of the probabilities; class_ids must be their argmax."""
    if row:
        probs = np.array([p["probabilities"] for p in answer["predictions"]])
        ids = np.array([p["class_ids"] for p in answer["predictions"]])
    else:
        probs, ids = np.array(answer["outputs"]["probabilities"]), np.array(answer["outputs"]["class_ids"])
    assert probs.shape == expected.shape, (probs.shape, expected.shape)
    assert np.array_equal(ids, probs.argmax(-1))
    return float(np.abs(probs - expected).max())


def test_served_predictions_equal_in_process(server, exported, evidence):
    """Row and columnar formats, default (latest = 2) and explicit versions, vs Keras in-process."""
    x, errors = exported.probe[:16], {}
    for version in (None, 1, 2):
        expected = exported.expected[version or 2][:16]
        errors[f"v{version or 'latest'}_row"] = _check_answer(
            server.client.predict("fashion", instances=x, version=version), expected, row=True)
        errors[f"v{version or 'latest'}_columnar"] = _check_answer(
            server.client.predict("fashion", inputs={"images": x}, version=version), expected, row=False)
    worst = max(errors.values())
    version_gap = float(np.abs(exported.expected[1] - exported.expected[2]).max())
    evidence.metric(f"served_vs_in_process_max_abs_diff_{server.kind}", worst,
                    threshold=exported.cfg["max_abs_error"], direction="lower", key=True)
    evidence.metric("version_1_vs_2_prediction_gap", version_gap)
    evidence.table(f"served_vs_in_process_{server.kind}", [{"request": k, "max_abs_diff": v} for k, v in errors.items()])
    assert worst <= exported.cfg["max_abs_error"], errors
    assert version_gap > 1e3 * exported.cfg["max_abs_error"], "the two versions must differ to test routing"


BAD_REQUESTS = {  # name: (method, path, body, expected status)
    "malformed JSON": ("POST", "/v1/models/fashion:predict", b'{"instances": [1, 2', 400),
    "wrong shape": ("POST", "/v1/models/fashion:predict", json.dumps({"instances": [[1.0, 2.0, 3.0]]}).encode(), 400),
    "wrong dtype": ("POST", "/v1/models/fashion:predict",
                    json.dumps({"instances": [[["pixel"] * 28] * 28]}).encode(), 400),
    "no instances or inputs": ("POST", "/v1/models/fashion:predict", json.dumps({"rows": [1]}).encode(), 400),
    "unknown signature": ("POST", "/v1/models/fashion:predict",
                          json.dumps({"signature_name": "nope", "inputs": [[[0.0] * 28] * 28]}).encode(), 400),
    "unknown model": ("POST", "/v1/models/nope:predict", json.dumps({"instances": [[[0.0] * 28] * 28]}).encode(), 404),
    "unknown version": ("GET", "/v1/models/fashion/versions/7", None, 404),
    "unknown version predict": ("POST", "/v1/models/fashion/versions/7:predict",
                                json.dumps({"instances": [[[0.0] * 28] * 28]}).encode(), 404),
}


def test_bad_requests_get_tf_serving_errors(server, exported, evidence):
    """Each bad request: the expected 4xx, body {"error": "<message>"}; the server keeps serving."""
    rows = []
    for name, (method, path, body, status) in BAD_REQUESTS.items():
        with pytest.raises(TFServingError) as info:
            server.client.request(method, path, body)
        err = info.value
        assert err.status == status, (name, err.status, err.message)
        assert isinstance(json.loads(err.body)["error"], str) and err.message, (name, err.body)
        ok = server.client.predict("fashion", instances=exported.probe[:2])
        assert _check_answer(ok, exported.expected[2][:2], row=True) <= exported.cfg["max_abs_error"]
        rows.append({"request": name, "status": err.status, "error": err.message[:120]})
    evidence.table(f"error_answers_{server.kind}", rows)


@pytest.mark.parametrize("server", ["stand-in"], indirect=True)
def test_oversized_body_is_refused(server, exported):
    """The stand-in's --max_request_bytes (TF Serving itself has no such limit): 413, error shape,
    and the next request is served."""
    n = exported.cfg["oversized_bytes"]
    body = json.dumps({"instances": [[[0.0] * 28] * 28], "padding": " " * n}).encode()
    assert len(body) > exported.cfg["max_request_bytes"]
    with pytest.raises(TFServingError) as info:
        server.client.request("POST", "/v1/models/fashion:predict", body)
    assert info.value.status == 413 and "exceeds" in json.loads(info.value.body)["error"]
    ok = server.client.predict("fashion", instances=exported.probe[:1])
    assert _check_answer(ok, exported.expected[2][:1], row=True) <= exported.cfg["max_abs_error"]


def test_concurrent_load_loses_nothing(server, exported, evidence):
    """load_clients threads x load_requests_per_client predicts (1-4 images, random version and
    format), within a time cap: every request answered 200 and right; latency p50/p95 recorded."""
    cfg = exported.cfg
    clients, per_client = cfg["load_clients"], cfg["load_requests_per_client"]
    deadline = time.monotonic() + cfg["load_time_cap_s"]
    lock, latencies, failures, worst = threading.Lock(), [], [], [0.0]

    def client_loop(k: int) -> int:
        rng, done = random.Random(k), 0
        for _ in range(per_client):
            if time.monotonic() > deadline:
                break
            n, version, row = rng.randint(1, 4), rng.choice([None, 1, 2]), rng.random() < 0.5
            start = rng.randrange(0, len(exported.probe) - n)
            x = exported.probe[start:start + n]
            t0 = time.perf_counter()
            try:
                answer = (server.client.predict("fashion", instances=x, version=version) if row else
                          server.client.predict("fashion", inputs={"images": x}, version=version))
                err = _check_answer(answer, exported.expected[version or 2][start:start + n], row)
            except Exception as e:  # noqa: BLE001  a lost or wrong answer is recorded, the loop goes on
                with lock:
                    failures.append(f"{type(e).__name__}: {e}")
                continue
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                worst[0] = max(worst[0], err)
            done += 1
        return done

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answered = sum(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - t0
    total = clients * per_client
    lat_ms = np.array(latencies) * 1e3
    p50, p95 = (float(np.percentile(lat_ms, q)) for q in (50, 95)) if len(lat_ms) else (float("nan"),) * 2
    evidence.metric(f"lost_or_wrong_requests_{server.kind}", total - answered, threshold=0, direction="lower", key=True)
    evidence.metric("latency_p50_ms", p50, unit="ms")
    evidence.metric("latency_p95_ms", p95, unit="ms")
    evidence.metric("throughput", answered / wall, unit="req/s")
    evidence.metric("worst_served_vs_in_process", worst[0], threshold=cfg["max_abs_error"], direction="lower")
    evidence.text(f"{clients} concurrent clients x {per_client} predict requests against the {server.kind} "
                  f"(1-4 images each, random version and format): {answered}/{total} answered correctly in "
                  f"{wall:.1f} s; p50 {p50:.1f} ms, p95 {p95:.1f} ms (2-core machine, clients and server share it).")
    assert not failures, failures[:5]
    assert answered == total, f"{total - answered} requests not sent before the {cfg['load_time_cap_s']} s cap"
    assert worst[0] <= cfg["max_abs_error"]
    assert server.proc.poll() is None, "the server died under load"


def test_version_policy_and_cli_flags(exported, tmp_path):
    """`latest { num_versions: 1 }` serves only version 2; `all {}` both; the CLI takes TF Serving's
    flags. Checked in-process through werkzeug's test client (no extra server process)."""
    from werkzeug.test import Client

    from deployment.tf_serving.__main__ import parse_args
    from deployment.tf_serving.config import select_versions
    from deployment.tf_serving.server import TFServingApp, load_models

    latest = write_models_config(tmp_path / "latest.config", [ModelConfig("fashion", str(exported.base))])
    (cfg,) = read_models_config(latest)
    assert (cfg.policy, cfg.num_versions) == ("latest", 1)
    app = Client(TFServingApp(load_models([cfg])))
    assert app.get("/v1/models/fashion/versions/2").status_code == 200
    assert app.get("/v1/models/fashion/versions/1").status_code == 404
    assert select_versions(ModelConfig("m", "/x", "all"), [3, 1, 2]) == [1, 2, 3]
    assert select_versions(ModelConfig("m", "/x", "latest", num_versions=2), [3, 1, 2]) == [2, 3]
    with pytest.raises(FileNotFoundError, match=r"\[4\]"):
        select_versions(ModelConfig("m", "/x", "specific", versions=[1, 4]), [1, 2])
    with pytest.raises(ValueError, match="policy"):
        ModelConfig("m", "/x", "newest")
    bad = tmp_path / "bad.config"
    bad.write_text("model_config_list { config { name: 'm' base_path: '/x' }")
    with pytest.raises(ValueError, match="missing '}'"):
        read_models_config(bad)
    args = parse_args(["--rest_api_port=8501", "--model_name=fashion", f"--model_base_path={exported.base}"])
    assert (args.rest_api_port, args.model_name) == (8501, "fashion")
    with pytest.raises(SystemExit):
        parse_args(["--rest_api_port=8501"])  # neither a base path nor a config file
