"""TorchServe handler for the Fashion-MNIST SmallCNN (implementations/architectures/cnn).

Runs inside TorchServe's Python worker, which imports it from the model archive, so it
imports only torch, safetensors, the standard library and the archive's own files
(`classifier.py`, `model_config.json`); it never imports this project's packages.

Contract: POST /predictions/<model>, `Content-Type: application/json`, body
`{"instances": [image, ...]}` with 1..max_instances images, each 28x28 nested lists of finite
pixel values in [0, 255]. Reply (200): `{"predictions": [{"label", "class", "probabilities"}],
"model_version", "batch_requests"}`; `batch_requests` is how many requests the server batched
into this forward pass. Bad input gets 400 (or 415 for a non-JSON content type) with
`{"error": what was wrong, "expected": the contract}`, for that request alone: the other
requests of its batch still get their answers.

Server-side batching: TorchServe hands `handle` up to batch_size requests (waiting at most
max_batch_delay ms); valid images of every request go through the model in one forward pass.
Fault injection (only when model_config.json has "fault_injection": true, for the tests):
header `X-Fault: raise` makes inference raise; `X-Fault: exit` kills the worker process.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

EXPECTED = ('application/json body {{"instances": [image, ...]}} with 1..{n} images, each '
            '{s}x{s} nested lists of finite numbers in [0, 255]')


class BadRequest(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class FashionCNNHandler:
    """initialize(context) once per worker; handle(data, context) per batch of requests."""

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None
        self.config: dict[str, Any] = {}
        self.version = ""

    def initialize(self, context: Any) -> None:
        props = context.system_properties
        model_dir = Path(props["model_dir"])
        self.config = json.loads((model_dir / "model_config.json").read_text())
        torch.set_num_threads(int(self.config.get("threads", 1)))
        from classifier import SmallCNN  # the archive's copy of implementations/.../classifier.py

        model = SmallCNN(**self.config["architecture"])
        weights = model_dir / context.manifest["model"]["serializedFile"]
        model.load_state_dict(load_file(weights), strict=True)
        self.model = model.eval()
        self.version = str(context.manifest["model"].get("modelVersion", ""))
        self.size = int(self.config["architecture"]["input_size"])
        self.max_instances = int(self.config["max_instances"])
        self.expected = EXPECTED.format(n=self.max_instances, s=self.size)

    # ------------------------------------------------------------------ validation
    def parse(self, request: dict[str, Any], headers: dict[str, str]) -> torch.Tensor:
        """One request -> float32 pixels (n, size, size); raises BadRequest saying what was wrong."""
        content_type = headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise BadRequest(f"unsupported content type {content_type or '(none)'!r}", 415)
        body = request.get("body", request.get("data"))
        if isinstance(body, (bytes, bytearray)):
            if not body.strip():
                raise BadRequest("empty body")
            try:
                body = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BadRequest(f"malformed JSON: {e}") from None
        if body is None or body == "":
            raise BadRequest("empty body")
        if not isinstance(body, dict) or "instances" not in body:
            raise BadRequest("the JSON must be an object with an 'instances' key")
        instances = body["instances"]
        if not isinstance(instances, list) or not 1 <= len(instances) <= self.max_instances:
            n = len(instances) if isinstance(instances, list) else type(instances).__name__
            raise BadRequest(f"'instances' must be a list of 1..{self.max_instances} images, got {n}")
        try:
            x = torch.tensor(instances, dtype=torch.float64)
        except (TypeError, ValueError) as e:
            raise BadRequest(f"images must be nested lists of numbers of one shape: {e}") from None
        if x.shape[1:] != (self.size, self.size):
            raise BadRequest(f"wrong shape {tuple(x.shape)}: expected (n, {self.size}, {self.size})")
        if not torch.isfinite(x).all():
            raise BadRequest("pixel values must be finite (found NaN or inf)")
        if x.min() < 0 or x.max() > 255:
            raise BadRequest(f"pixel values must be in [0, 255], got [{x.min():g}, {x.max():g}]")
        return x.float()

    # ------------------------------------------------------------------ pipeline
    def preprocess(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, H, W) in [0, 255] -> standardised (n, 1, H, W), as in training."""
        return ((pixels / 255.0 - self.config["mean"]) / self.config["std"]).unsqueeze(1)

    @torch.inference_mode()
    def inference(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def postprocess(self, logits: torch.Tensor) -> list[dict[str, Any]]:
        probs = torch.softmax(logits, dim=1)
        labels = probs.argmax(1).tolist()
        names = self.config["class_names"]
        return [{"label": k, "class": names[k], "probabilities": p} for k, p in zip(labels, probs.tolist())]

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[Any]:
        out: list[Any] = [None] * len(data)
        images, owners = [], []
        for i, request in enumerate(data):
            headers = {k.lower(): v for k, v in context.get_all_request_header(i).items()
                       if isinstance(v, str)}
            context.set_response_content_type(i, "application/json")
            try:
                pixels = self.parse(request, _body_headers(request, headers, context, i))
            except BadRequest as e:
                context.set_response_status(e.status, str(e), i)
                out[i] = {"error": str(e), "expected": self.expected}
                continue
            self._maybe_fault(headers.get("x-fault"))
            images.append(pixels)
            owners.append(i)
        if images:
            counts = [len(p) for p in images]
            preds = self.postprocess(self.inference(self.preprocess(torch.cat(images))))
            start = 0
            for i, n in zip(owners, counts):
                out[i] = {"predictions": preds[start:start + n], "model_version": self.version,
                          "batch_requests": len(owners)}
                start += n
        return out

    def _maybe_fault(self, fault: str | None) -> None:
        if not fault or not self.config.get("fault_injection"):
            return
        if fault == "raise":
            raise RuntimeError("injected fault (X-Fault: raise)")
        if fault == "exit":
            os._exit(17)


def _reject_constant(name: str) -> float:
    # json.loads accepts NaN/Infinity literals; reject them with the same message as NaN values
    raise BadRequest("pixel values must be finite (found NaN or inf)")


def _body_headers(request: dict, headers: dict[str, str], context: Any, idx: int) -> dict[str, str]:
    """The body parameter's own content type (TorchServe reports it per parameter)."""
    prop = context.request_processor[idx].get_request_property("body")
    if isinstance(prop, dict) and prop.get("content-type"):
        return {**headers, "content-type": prop["content-type"]}
    return headers


_service = FashionCNNHandler()


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[Any] | None:
    """TorchServe's entry point: initialise on first call (data is None at load time)."""
    if _service.model is None:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)

