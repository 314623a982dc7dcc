"""Data-parallel training with `torch.distributed` (DDP), launched by torchrun:

    torchrun --nproc_per_node=N -m implementations.frameworks.torch.ddp_train \\
        --steps S --global-batch B --seed K --out DIR [--backend gloo|nccl] [--resume DIR]

An MLP (64-256-256-10) on scikit-learn digits (1344 training images, a seeded stratified
split). Each rank draws its shard with `DistributedSampler` (shuffled per epoch, seed K) and
takes B / N images per step, so step t of every world size sees the same global batch:
rank r's images are indices[r::N] of the epoch's permutation, and the first B / N of them
over all ranks are exactly indices[t*B:(t+1)*B]. DDP averages the ranks' gradients, which
equals the gradient of the global batch's mean loss. Plain SGD with momentum, no dropout and
no batch norm, so nothing but the float32 summation order differs between world sizes.

Rank 0 writes DIR/model.safetensors, DIR/metrics.json (losses, steps/s, every rank's
epoch-0 shard) and DIR/checkpoint.pt (model, optimizer, step; reloaded with
weights_only=True by --resume). `--dump-grads` also writes DIR/grads_rank{r}.safetensors:
each rank's gradient after the last backward (all-reduced) and its local gradient before it.
`--fail-rank R --fail-at-step T` makes rank R raise at step T (to test failure handling; it
writes the wall-clock time of the failure to DIR/failed_rank{R}.time first).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from implementations.data.images import digits_split

__all__ = ["make_model", "load_data", "main", "N_TRAIN"]

N_TRAIN = 1344  # 21 * 64: digits' 1797 images minus a stratified test set of 453
TIMEOUT = datetime.timedelta(seconds=int(os.environ.get("DDP_TIMEOUT_S", "60")))


class InjectedFailure(RuntimeError):
    """Raised by --fail-rank on purpose."""


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def load_data(seed: int) -> tuple[TensorDataset, TensorDataset]:
    """Digits as float32 (N, 64) in [0, 1]: (train of N_TRAIN, test of 453)."""
    s = digits_split(test_size=1797 - N_TRAIN, seed=seed)

    def to_ds(X, y) -> TensorDataset:
        return TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    return to_ds(s.X_train, s.y_train), to_ds(s.X_test, s.y_test)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, required=True, help="total optimizer steps (including resumed ones)")
    p.add_argument("--global-batch", type=int, required=True, help="images per step over all ranks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backend", choices=("gloo", "nccl"), default="gloo")
    p.add_argument("--resume", type=Path, help="a DIR holding checkpoint.pt from an earlier run")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--dump-grads", action="store_true")
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--fail-at-step", type=int, default=-1)
    return p.parse_args(argv)


def _flat_grads(model: nn.Module) -> dict[str, Tensor]:
    return {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()}


@record  # a failing rank's exception goes into torchrun's summary as the root cause
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if "RANK" not in os.environ:
        raise SystemExit("run me with torchrun (e.g. torchrun --nproc_per_node=2 -m "
                         "implementations.frameworks.torch.ddp_train ...): RANK is not set")
    dist.init_process_group(args.backend, timeout=TIMEOUT)
    try:
        train(args)
    finally:
        dist.destroy_process_group()


def train(args: argparse.Namespace) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    if args.global_batch % world:
        raise ValueError(f"--global-batch {args.global_batch} must be divisible by the world size {world}")
    if args.backend == "nccl":
        local_rank = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(1)  # one core per process: N processes on N cores
    train_ds, test_ds = load_data(args.seed)
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    loader = DataLoader(train_ds, batch_size=args.global_batch // world, sampler=sampler, drop_last=True)
    steps_per_epoch = len(loader)
    model = make_model(args.seed).to(device)
    ckpt = None
    if args.resume is not None:
        ckpt = torch.load(args.resume / "checkpoint.pt", map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
    # DDP broadcasts rank 0's parameters here, so every rank starts from the same weights
    ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=args.momentum)
    step = 0
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])  # momentum buffers: resuming without them drifts
        step = int(ckpt["step"])
    shards = [None] * world
    sampler.set_epoch(0)
    dist.all_gather_object(shards, list(iter(sampler)))
    losses: list[float] = []
    epoch_heads: dict[int, list[int]] = {}  # each epoch's first shard indices (set_epoch reshuffles)
    local_grads: dict[str, Tensor] = {}
    start_step, t0 = step, time.perf_counter()
    while step < args.steps:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler.set_epoch(epoch)
        epoch_heads[epoch] = list(iter(sampler))[:8]
        for i, (x, y) in enumerate(loader):
            if i < skip:  # resume mid-epoch: the same batches an uninterrupted run would skip past
                continue
            if step >= args.steps:
                break
            if rank == args.fail_rank and step == args.fail_at_step:
                args.out.mkdir(parents=True, exist_ok=True)  # when it failed, to time the teardown
                (args.out / f"failed_rank{rank}.time").write_text(repr(time.time()))
                raise InjectedFailure(f"rank {rank}: injected failure at step {step} (--fail-rank)")
            x, y = x.to(device), y.to(device)
            if args.dump_grads and step == args.steps - 1:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()  # the plain module: no all-reduce
                local_grads = _flat_grads(model)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(ddp(x), y)
            loss.backward()  # DDP all-reduces (averages) the gradients here
            opt.step()
            losses.append(loss.item())
            step += 1
    elapsed = time.perf_counter() - t0
    if args.dump_grads:
        args.out.mkdir(parents=True, exist_ok=True)
        synced = {f"synced.{k}": v for k, v in _flat_grads(model).items()}
        save_file(synced | {f"local.{k}": v for k, v in local_grads.items()},
                  args.out / f"grads_rank{rank}.safetensors")
    last_loss = torch.tensor([losses[-1] if losses else float("nan")], device=device)
    dist.all_reduce(last_loss)  # sum of the ranks' half-batch means -> the global batch's mean
    if rank == 0:
        ran = step - start_step
        metrics = {"world_size": world, "backend": args.backend, "steps": step, "steps_this_run": ran,
                   "global_batch": args.global_batch, "seed": args.seed, "steps_per_epoch": steps_per_epoch,
                   "resumed_from_step": start_step if args.resume else None, "train_seconds": elapsed,
                   "steps_per_second": ran / elapsed if elapsed > 0 else None, "rank0_losses": losses,
                   "last_global_loss": last_loss.item() / world, "epoch0_shards": shards,
                   "rank0_epoch_heads": epoch_heads}
        _write_outputs(args, model, opt, step, metrics, test_ds, device)
    dist.barrier()


def _write_outputs(args: argparse.Namespace, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                   metrics: dict, test_ds: TensorDataset, device: torch.device) -> None:
    """Rank 0: model.safetensors, checkpoint.pt (model, optimizer, step) and metrics.json."""
    args.out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, args.out / "model.safetensors")
    torch.save({"model": state, "optimizer": opt.state_dict(), "step": step}, args.out / "checkpoint.pt")
    with torch.no_grad():
        X, y = test_ds.tensors
        metrics["test_accuracy"] = (model(X.to(device)).argmax(1).cpu() == y).float().mean().item()
    (args.out / "metrics.json").write_text(json.dumps(metrics))


def load_model(out: Path) -> dict[str, Tensor]:
    """The state dict rank 0 wrote to DIR/model.safetensors."""
    return load_file(out / "model.safetensors")


if __name__ == "__main__":
    main()
