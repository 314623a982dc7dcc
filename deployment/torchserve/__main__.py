"""python -m deployment.torchserve archive|start|stop

    archive --out STORE [--weights BUNDLE.safetensors] [--version 1.0] [--n-train 4000] [--epochs 1]
            [--fault-injection]
    start   --model-store STORE --run-dir DIR [--batch-size 8] [--max-batch-delay 5] [--workers 1]
    stop    --run-dir DIR

`archive` trains the Fashion-MNIST SmallCNN briefly (or takes a bundle saved by
`archive.save_bundle`) and writes STORE/fashion_cnn_v<version>.mar. `start` prints one JSON
line (inference, management and metrics URLs, model, PID, cold start seconds) once the model
is READY, or exits 1 with the log's last lines. `stop` stops the PID recorded in DIR.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m deployment.torchserve", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("archive", help="train (or load) the model and write a .mar")
    a.add_argument("--out", type=Path, required=True, help="model store folder")
    a.add_argument("--weights", type=Path, help="a bundle written by archive.save_bundle")
    a.add_argument("--version", default="1.0")
    a.add_argument("--n-train", type=int, default=4000)
    a.add_argument("--epochs", type=int, default=1)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--fault-injection", action="store_true",
                   help="let the X-Fault header make the handler raise or its worker exit (tests only)")
    s = sub.add_parser("start", help="start TorchServe and register the model")
    s.add_argument("--model-store", type=Path, required=True)
    s.add_argument("--run-dir", type=Path, required=True)
    s.add_argument("--model-name", default="fashion_cnn")
    s.add_argument("--mar", help="archive file name in the store (default: the last *.mar)")
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--max-batch-delay", type=int, default=5, help="milliseconds")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--timeout", type=float, default=120, help="seconds to wait for READY")
    t = sub.add_parser("stop", help="stop the server started in --run-dir")
    t.add_argument("--run-dir", type=Path, required=True)
    args = p.parse_args(argv)

    if args.command == "archive":
        from .archive import load_bundle, train_model, write_archive

        bundle = load_bundle(args.weights) if args.weights else train_model(args.n_train, args.epochs, args.seed)
        print(write_archive(bundle, args.out, version=args.version, fault_injection=args.fault_injection))
        return 0
    from .server import start, stop

    if args.command == "start":
        try:
            server = start(args.model_store, args.run_dir, args.model_name, args.mar, args.batch_size,
                           args.max_batch_delay, args.workers, args.timeout)
        except (RuntimeError, TimeoutError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(server.to_json(), flush=True)
        return 0
    stopped = stop(args.run_dir)
    print("stopped" if stopped else f"no running server recorded in {args.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
