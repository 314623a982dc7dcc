"""A stand-in for TensorFlow Serving's REST API, on `tf.saved_model.load` and werkzeug.

The real `tensorflow_model_server` cannot be installed here (DESIGN.md), so this serves the same
contract for the predict/status/metadata part of the API:

    GET  /v1/models/<name>[/versions/<v>]            model status
    GET  /v1/models/<name>[/versions/<v>]/metadata   signature defs (the SavedModel's own protos)
    POST /v1/models/<name>[/versions/<v>]:predict    row ("instances") or columnar ("inputs") format

Errors are TF Serving's: a JSON body {"error": "<message>"} with its status mapping
(INVALID_ARGUMENT -> 400, NOT_FOUND -> 404, ...). Not served: classify/regress, version labels,
gRPC, model reloading. One stand-in-only limit: request bodies over `max_request_bytes` get 413.
HTTP parsing, routing and the threaded server are werkzeug's.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.wrappers import Request, Response

from .config import ModelConfig, available_versions, select_versions

__all__ = ["Servable", "TFServingApp", "load_models"]

DEFAULT_SIGNATURE = "serving_default"
DT_TO_NUMPY = {"DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT32": np.int32, "DT_INT64": np.int64,
               "DT_HALF": np.float16, "DT_INT8": np.int8, "DT_UINT8": np.uint8, "DT_INT16": np.int16}
log = logging.getLogger(__name__)


class ServingError(Exception):
    """A TF Serving status: `code` is the HTTP status its error code maps to."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Servable:
    """One loaded version: the tf.saved_model object and its SignatureDefs (protobuf)."""
    name: str
    version: int
    path: Path
    loaded: object
    signature_defs: dict

    def signature(self, name: str):
        if name not in self.signature_defs or name.startswith("__"):
            raise ServingError(400, f'Serving signature name: "{name}" not found in signature def')
        return self.signature_defs[name], self.loaded.signatures[name]


def _load(name: str, version: int, path: Path) -> Servable:
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    serve = [g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags]
    if not serve:
        raise ValueError(f"{path}: no MetaGraph tagged 'serve'")
    return Servable(name, version, path, tf.saved_model.load(str(path)), dict(serve[0].signature_def))


def load_models(configs: list[ModelConfig]) -> dict[str, dict[int, Servable]]:
    """Load every version each config's policy selects; a model with none on disk is an error."""
    models = {}
    for cfg in configs:
        versions = select_versions(cfg, available_versions(cfg.base_path))
        if not versions:
            raise FileNotFoundError(f"model {cfg.name!r}: no version directory with a saved_model.pb under "
                                    f"{cfg.base_path}")
        models[cfg.name] = {v: _load(cfg.name, v, Path(cfg.base_path) / str(v)) for v in versions}
        log.info("loaded %s versions %s", cfg.name, versions)
    return models


class _ModelName(BaseConverter):
    regex = r"[^/:]+"  # TF Serving's ([^/:]+)


def _to_array(value, name: str, dtype: str, shape: list[int], batched: bool, where: str) -> np.ndarray:
    """JSON value -> numpy array of the signature's dtype; 400 on wrong type or shape."""
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise ServingError(400, f"{where}: input '{name}' is not a rectangular array: {e}") from None
    if arr.dtype.kind not in "iuf" or arr.dtype == bool:
        kind = "bool" if arr.dtype == bool else "string" if arr.dtype.kind in "US" else "mixed/object"
        raise ServingError(400, f"{where}: input '{name}' holds {kind} values, expected numbers of type {dtype}")
    target = DT_TO_NUMPY.get(dtype)
    if target is None:
        raise ServingError(400, f"input '{name}' has dtype {dtype}, which this stand-in does not serve")
    if np.issubdtype(target, np.integer) and arr.dtype.kind == "f":
        raise ServingError(400, f"{where}: input '{name}' expects integers ({dtype}), got floating point values")
    if len(shape) != arr.ndim or any(s not in (-1, a) for s, a in zip(shape, arr.shape)):
        raise ServingError(400, f"{where}: input '{name}' has shape {list(arr.shape)}, the signature expects "
                                f"{shape} (-1 = any size)" + (" including the batch dimension" if batched else ""))
    return arr.astype(target)


class TFServingApp:
    """The WSGI application. `models`: name -> {version: Servable}."""

    def __init__(self, models: dict[str, dict[int, Servable]], max_request_bytes: int = 8 << 20) -> None:
        self.models, self.max_request_bytes = models, max_request_bytes
        self.url_map = Map([
            Rule("/v1/models/<model:name>", methods=["GET"], endpoint="status"),
            Rule("/v1/models/<model:name>/versions/<int:version>", methods=["GET"], endpoint="status"),
            Rule("/v1/models/<model:name>/metadata", methods=["GET"], endpoint="metadata"),
            Rule("/v1/models/<model:name>/versions/<int:version>/metadata", methods=["GET"], endpoint="metadata"),
            Rule("/v1/models/<model:name>:predict", methods=["POST"], endpoint="predict"),
            Rule("/v1/models/<model:name>/versions/<int:version>:predict", methods=["POST"], endpoint="predict"),
        ], converters={"model": _ModelName}, strict_slashes=False)

    # ------------------------------------------------------------ lookup
    def _servables(self, name: str, version: int | None) -> list[Servable]:
        if name not in self.models:
            raise ServingError(404, f"Servable not found for request: Latest({name})" if version is None
                               else f"Servable not found for request: Specific({name}, {version})")
        versions = self.models[name]
        if version is None:
            return [versions[v] for v in sorted(versions, reverse=True)]
        if version not in versions:
            raise ServingError(404, f"Servable not found for request: Specific({name}, {version})")
        return [versions[version]]

    # ------------------------------------------------------------ endpoints
    def status(self, request: Request, name: str, version: int | None = None) -> dict:
        return {"model_version_status": [
            {"version": str(s.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for s in self._servables(name, version)]}

    def metadata(self, request: Request, name: str, version: int | None = None) -> dict:
        from google.protobuf import json_format

        servable = self._servables(name, version)[0]
        defs = {k: json_format.MessageToDict(v, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True)
                for k, v in servable.signature_defs.items()}
        return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                "metadata": {"signature_def": {"signature_def": defs}}}

    def predict(self, request: Request, name: str, version: int | None = None) -> dict:
        import tensorflow as tf
        from tensorflow.core.framework import types_pb2

        body = self._read_body(request)
        servable = self._servables(name, version)[0]
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ServingError(400, f"JSON Parse error: {e}") from None
        if not isinstance(payload, dict):
            raise ServingError(400, "JSON Value is not an object: expected {\"instances\": ...} or {\"inputs\": ...}")
        if ("instances" in payload) == ("inputs" in payload):
            raise ServingError(400, "Missing 'inputs' or 'instances' key" if "instances" not in payload else
                               "Not formatted correctly: request holds both 'instances' and 'inputs'")
        sig_name = payload.get("signature_name") or DEFAULT_SIGNATURE
        sig_def, fn = servable.signature(sig_name)
        specs = {k: (types_pb2.DataType.Name(v.dtype), [d.size for d in v.tensor_shape.dim])
                 for k, v in sig_def.inputs.items()}
        row = "instances" in payload
        values = self._inputs(payload["instances"] if row else payload["inputs"], specs, row)
        arrays = {k: _to_array(v, k, specs[k][0], specs[k][1], True,
                               "instances" if row else "inputs") for k, v in values.items()}
        if row and len({a.shape[0] for a in arrays.values()}) > 1:
            raise ServingError(400, "instances: every named input must have the same number of instances")
        try:
            out = fn(**{k: tf.constant(a) for k, a in arrays.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            raise ServingError(400, f"{type(e).__name__}: {str(e).splitlines()[0]}") from None
        out = {k: v.numpy() for k, v in out.items()}
        if not row:
            return {"outputs": next(iter(out.values())).tolist() if len(out) == 1 else
                    {k: v.tolist() for k, v in out.items()}}
        if len(out) == 1:
            return {"predictions": next(iter(out.values())).tolist()}
        n = len(next(iter(out.values())))
        return {"predictions": [{k: v[i].tolist() for k, v in out.items()} for i in range(n)]}

    def _inputs(self, value, specs: dict, row: bool) -> dict:
        """Row format: a list of instances (values, or objects keyed by input name) -> {name: list};
        columnar: a value (one input) or an object keyed by input name."""
        names = list(specs)
        if row:
            if not isinstance(value, list) or not value:
                raise ServingError(400, "'instances' must be a non-empty list")
            if all(isinstance(v, dict) for v in value):
                keys = set(value[0])
                if keys != set(names) or any(set(v) != keys for v in value):
                    raise ServingError(400, f"instances: every instance must name exactly the inputs {names}")
                return {k: [v[k] for v in value] for k in names}
            if len(names) != 1:
                raise ServingError(400, f"instances: the signature has inputs {names}; each instance must be an "
                                        "object keyed by input name")
            return {names[0]: value}
        if isinstance(value, dict):
            if set(value) != set(names):
                raise ServingError(400, f"inputs: expected the named inputs {names}, got {sorted(value)}")
            return value
        if len(names) != 1:
            raise ServingError(400, f"inputs: the signature has inputs {names}; give an object keyed by input name")
        return {names[0]: value}

    def _read_body(self, request: Request) -> bytes:
        length = request.content_length
        if length is not None and length > self.max_request_bytes:
            # Drain (bounded) without keeping it, so the client can read the answer, then refuse.
            stream, left = request.stream, min(length, 16 * self.max_request_bytes)
            while left > 0 and (chunk := stream.read(min(left, 1 << 16))):
                left -= len(chunk)
            raise ServingError(413, f"Request body of {length} bytes exceeds this server's limit of "
                                    f"{self.max_request_bytes} bytes (--max_request_bytes)")
        return request.get_data(cache=False)

    # ------------------------------------------------------------ WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = self.url_map.bind_to_environ(environ).match()
            result, code = getattr(self, endpoint)(request, **args), 200
        except ServingError as e:
            result, code = {"error": e.message}, e.code
        except NotFound:
            # TF Serving answers any other /v1/ path with INVALID_ARGUMENT "Malformed request".
            code = 400 if request.path.startswith("/v1/") else 404
            result = {"error": f"Malformed request: {request.method} {request.path}"}
        except HTTPException as e:  # e.g. 405: a known path with the wrong method
            code, result = 400, {"error": f"Malformed request: {request.method} {request.path} ({e.name})"}
        except Exception as e:  # noqa: BLE001  an unexpected failure is INTERNAL, the server keeps serving
            log.exception("internal error")
            code, result = 500, {"error": f"Internal: {type(e).__name__}: {e}"}
        response = Response(json.dumps(result), status=code, mimetype="application/json")
        return response(environ, start_response)
