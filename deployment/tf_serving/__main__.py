"""Start the TF Serving stand-in with tensorflow_model_server's own flags, on 127.0.0.1:

    python -m deployment.tf_serving --rest_api_port=8501 --model_name=fashion --model_base_path=/abs/fashion
    python -m deployment.tf_serving --rest_api_port=8501 --model_config_file=/abs/models.config

`--port` (gRPC) is accepted and ignored: the stand-in serves REST only. `--max_request_bytes` is
the stand-in's own (TF Serving has no such flag). Prints "ready on http://127.0.0.1:PORT" once every
model is loaded; stops on SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from .config import ModelConfig, read_models_config
from .server import TFServingApp, load_models


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deployment.tf_serving",
                                description="TensorFlow Serving REST stand-in (127.0.0.1 only)")
    p.add_argument("--rest_api_port", type=int, required=True, help="HTTP/REST port")
    p.add_argument("--port", type=int, default=0, help="gRPC port of the real server: accepted, not served")
    p.add_argument("--model_name", default="default", help="name of the single model (with --model_base_path)")
    p.add_argument("--model_base_path", help="folder holding <version>/saved_model.pb (latest version is served)")
    p.add_argument("--model_config_file", help="models.config (ModelServerConfig text proto)")
    p.add_argument("--rest_api_num_threads", type=int, default=16, help="accepted; werkzeug serves a thread per request")
    p.add_argument("--max_request_bytes", type=int, default=8 << 20, help="stand-in only: larger bodies get 413")
    args = p.parse_args(argv)
    if bool(args.model_base_path) == bool(args.model_config_file):
        p.error("give exactly one of --model_base_path or --model_config_file")
    if not 0 < args.rest_api_port < 65536:
        p.error(f"--rest_api_port must be in 1..65535, got {args.rest_api_port}")
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    configs = (read_models_config(args.model_config_file) if args.model_config_file
               else [ModelConfig(args.model_name, args.model_base_path)])
    app = TFServingApp(load_models(configs), max_request_bytes=args.max_request_bytes)

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *a, **k) -> None:  # one line per request would flood the load test's log
            pass

    server = make_server("127.0.0.1", args.rest_api_port, app, threaded=True, request_handler=QuietHandler)
    print(f"ready on http://127.0.0.1:{args.rest_api_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
