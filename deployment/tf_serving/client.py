"""A client for TensorFlow Serving's REST API (the real server or the stand-in), standard library only.

    client = TFServingClient("http://127.0.0.1:8501")
    client.status("fashion")                       # GET /v1/models/fashion
    client.metadata("fashion", version=2)          # GET /v1/models/fashion/versions/2/metadata
    client.predict("fashion", instances=[...])     # POST /v1/models/fashion:predict  (row format)
    client.predict("fashion", inputs={...})        # columnar format

A non-200 answer raises TFServingError with the HTTP status and the server's {"error": ...} text.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np

__all__ = ["TFServingClient", "TFServingError"]


class TFServingError(Exception):
    def __init__(self, status: int, message: str, body: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.body = status, message, body


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


class TFServingClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url, self.timeout = base_url.rstrip("/"), timeout

    def _path(self, model: str, version: int | None) -> str:
        return f"/v1/models/{model}" + (f"/versions/{int(version)}" if version is not None else "")

    def request(self, method: str, path: str, body: bytes | None = None) -> dict:
        """Send one request; return the JSON answer or raise TFServingError (non-200)."""
        req = urllib.request.Request(self.base_url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text
            raise TFServingError(e.code, message, text) from None

    def status(self, model: str, version: int | None = None) -> dict:
        return self.request("GET", self._path(model, version))

    def metadata(self, model: str, version: int | None = None) -> dict:
        return self.request("GET", self._path(model, version) + "/metadata")

    def predict(self, model: str, instances=None, inputs=None, version: int | None = None,
                signature_name: str | None = None) -> dict:
        """Row format (`instances`: a list, or an array whose first dim is the batch) or columnar
        (`inputs`: an array or {name: array}). Returns {"predictions": ...} or {"outputs": ...}."""
        if (instances is None) == (inputs is None):
            raise ValueError("give exactly one of instances (row format) or inputs (columnar format)")
        payload = {"instances": _jsonable(instances)} if instances is not None else {"inputs": _jsonable(inputs)}
        if signature_name:
            payload["signature_name"] = signature_name
        return self.request("POST", self._path(model, version) + ":predict", json.dumps(payload).encode())
