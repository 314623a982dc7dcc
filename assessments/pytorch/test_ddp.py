"""Distributed data-parallel training with torchrun (requirement pytorch.3): gloo on CPU, two
processes. The 2-process model equals the 1-process model trained on the same global batches;
the sampler's shards are disjoint and cover the epoch; every rank holds the same (averaged)
gradient after backward; stop-and-resume equals an uninterrupted run; a rank that raises ends
the whole job, non-zero, with its error. The NCCL path is the same entry point (marked gpu)."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file

from assessments.pytorch._helpers import crashed_at_teardown, launch, module_experiment
from implementations.frameworks.torch.ddp_train import N_TRAIN, make_model
from implementations.viz.bars import plot_bars
from implementations.viz.curves import plot_curves

pytestmark = [pytest.mark.torch, pytest.mark.distributed]


@pytest.fixture(scope="module")
def cfg(request):
    return module_experiment(request, "ddp")


@pytest.fixture(scope="module")
def jobs(cfg, tmp_path_factory, request):
    """Every torchrun job of this module, started together (they are independent, except the
    resume, which starts when the stopped run has ended) and each bounded in time."""
    seed = request.config.getoption("--seed")
    root = tmp_path_factory.mktemp("ddp")
    common = ["--global-batch", str(cfg["global_batch"]), "--seed", str(seed), "--lr", str(cfg["lr"])]
    steps, stop = str(cfg["steps"]), str(cfg["stop_at"])
    argv = {
        "one": (1, ["--steps", steps, "--out", str(root / "one"), *common]),
        "two": (2, ["--steps", steps, "--out", str(root / "two"), "--dump-grads", *common]),
        "stopped": (2, ["--steps", stop, "--out", str(root / "stopped"), *common]),
        "failing": (2, ["--steps", steps, "--out", str(root / "failing"), "--fail-rank", "1",
                        "--fail-at-step", "3", *common]),
        "resumed": (2, ["--steps", steps, "--out", str(root / "resumed"), "--resume", str(root / "stopped"),
                        *common]),
    }
    started = {name: launch(name, *argv[name], root) for name in ("one", "two", "stopped", "failing")}
    started["stopped"].wait(cfg["job_timeout_s"])
    started["resumed"] = launch("resumed", *argv["resumed"], root)
    try:
        done = {name: job.wait(cfg["job_timeout_s"]) for name, job in started.items()}
    finally:
        for job in started.values():
            if job.proc.poll() is None:
                job.wait(0)  # kills what is left (a failure above skipped its wait)
    # gloo's teardown can abort a rank after a complete, correct run ("terminate called without an
    # active exception", then SIGSEGV at exit; seen once in ~20 runs on 2 loaded cores). Such a job
    # is run once more (same arguments, fresh output) and the retry is recorded; a crash that
    # recurs, or any other failure, still fails the tests.
    retried = [name for name, job in done.items() if name != "failing" and crashed_at_teardown(job)]
    for name in retried:
        shutil.rmtree(root / name, ignore_errors=True)
        done[name] = launch(f"{name}-retry", *argv[name], root).wait(cfg["job_timeout_s"])
    done["retried"] = retried
    return root, done


def _ok(jobs, name):
    root, done = jobs
    job = done[name]
    assert job.returncode == 0, f"torchrun job {name!r} failed (rc={job.returncode}):\n{job.output[-3000:]}"
    return root / name


def _tensor_diffs(a, b) -> dict[str, float]:
    """Max |difference| per weight tensor of the models two runs wrote."""
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return {k: (wa[k] - wb[k]).abs().max().item() for k in wa}


def _weights_diff(a, b) -> float:
    return max(_tensor_diffs(a, b).values())


def test_two_processes_equal_one_on_the_same_global_batches(jobs, cfg, evidence, seed):
    one, two = _ok(jobs, "one"), _ok(jobs, "two")
    evidence.metric("jobs_rerun_after_a_teardown_crash", len(jobs[1]["retried"]))
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert (m1["world_size"], m2["world_size"]) == (1, 2)
    assert m1["steps"] == m2["steps"] == cfg["steps"] and m1["steps_per_epoch"] == m2["steps_per_epoch"]
    diffs = _tensor_diffs(one, two)
    diff = max(diffs.values())
    evidence.figure("weight_diff_per_tensor", plot_bars(
        diffs, "2 processes vs 1: max |weight difference| per tensor", "max abs difference",
        lines={"tolerance": cfg["max_abs_weight_diff"]}))
    trained, init = load_file(one / "model.safetensors"), make_model(seed).state_dict()
    moved = min((trained[k] - init[k]).abs().max().item() for k in init)
    evidence.metric("max_abs_weight_diff_1_vs_2_processes", diff, threshold=cfg["max_abs_weight_diff"],
                    direction="lower", key=True)
    evidence.metric("test_accuracy_2_processes", m2["test_accuracy"], threshold=cfg["min_test_accuracy"],
                    direction="higher")
    evidence.metric("steps_per_second_1_process", m1["steps_per_second"], unit="steps/s")
    evidence.metric("steps_per_second_2_processes", m2["steps_per_second"], unit="steps/s")
    evidence.table("ddp_runs", [
        {"processes": m["world_size"], "steps": m["steps"], "global_batch": m["global_batch"],
         "steps_per_second": m["steps_per_second"], "last_global_loss": m["last_global_loss"],
         "test_accuracy": m["test_accuracy"]} for m in (m1, m2)])
    evidence.text("Steps/s is the training loop only (after imports and rendezvous), gloo on a 2-core "
                  "CPU, with the module's other torchrun jobs running at the same time. A tiny MLP "
                  "step costs less than gloo's all-reduce, so 2 processes are not faster here: DDP "
                  "pays off when compute per step dominates communication (big models, GPUs/NCCL).")
    assert moved > 1e-3, "training did not move the weights"
    assert diff <= cfg["max_abs_weight_diff"]
    assert abs(m1["last_global_loss"] - m2["last_global_loss"]) <= 1e-4
    assert m2["test_accuracy"] >= cfg["min_test_accuracy"]


def test_sampler_shards_are_disjoint_and_cover_the_epoch(jobs, evidence):
    two = _ok(jobs, "two")
    shards = json.loads((two / "metrics.json").read_text())["epoch0_shards"]
    assert len(shards) == 2 and len(shards[0]) == len(shards[1]) == N_TRAIN // 2
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(N_TRAIN))
    assert shards[0] != sorted(shards[0]), "the sampler should shuffle"
    heads = json.loads((two / "metrics.json").read_text())["rank0_epoch_heads"]
    assert len(heads) >= 2 and len({tuple(h) for h in heads.values()}) == len(heads), \
        f"every epoch should be reshuffled (sampler.set_epoch): {heads}"
    evidence.metric("shard_overlap", len(set(shards[0]) & set(shards[1])), key=True, threshold=0, direction="lower")


def test_gradients_identical_on_every_rank(jobs, cfg, evidence):
    two = _ok(jobs, "two")
    g0, g1 = (load_file(two / f"grads_rank{r}.safetensors") for r in (0, 1))
    names = [k.removeprefix("synced.") for k in g0 if k.startswith("synced.")]
    assert names
    local_gap = max((g0[f"local.{n}"] - g1[f"local.{n}"]).abs().max().item() for n in names)
    mean_err = max((g0[f"synced.{n}"] - (g0[f"local.{n}"] + g1[f"local.{n}"]) / 2).abs().max().item()
                   for n in names)
    for n in names:
        assert torch.equal(g0[f"synced.{n}"], g1[f"synced.{n}"]), f"{n}: ranks hold different gradients"
    evidence.metric("max_local_gradient_gap_between_ranks", local_gap)
    evidence.metric("max_error_synced_vs_mean_of_local", mean_err, threshold=cfg["max_grad_mean_error"],
                    direction="lower", key=True)
    assert local_gap > 1e-4, "the ranks' local gradients should differ (different shards)"
    assert mean_err <= cfg["max_grad_mean_error"]


def test_stop_and_resume_equals_an_uninterrupted_run(jobs, cfg, evidence):
    two, resumed = _ok(jobs, "two"), _ok(jobs, "resumed")
    m_full, m_res = (json.loads((d / "metrics.json").read_text()) for d in (two, resumed))
    assert m_res["resumed_from_step"] == cfg["stop_at"] and m_res["steps"] == cfg["steps"]
    diff = _weights_diff(two, resumed)
    stopped = json.loads((jobs[0] / "stopped" / "metrics.json").read_text())["rank0_losses"]
    evidence.figure("loss_uninterrupted_vs_resumed", plot_curves(
        {"uninterrupted": m_full["rank0_losses"],
         f"stopped at {cfg['stop_at']} + resumed": stopped + m_res["rank0_losses"]},
        "Stop-and-resume retraces the uninterrupted run", "step", "rank 0 loss"))
    assert stopped == m_full["rank0_losses"][:cfg["stop_at"]]
    evidence.metric("max_abs_weight_diff_resumed_vs_uninterrupted", diff, threshold=0.0, direction="lower", key=True)
    assert m_res["rank0_losses"] == m_full["rank0_losses"][cfg["stop_at"]:]
    assert diff == 0.0


def test_a_failing_rank_ends_the_job_with_its_error(jobs, cfg, evidence):
    """Rank 1 raises at step 3 while rank 0 waits in the all-reduce: torchrun must tear the
    job down (not leave rank 0 blocked until the collective's timeout) and report the error."""
    root, done = jobs
    job = done["failing"]
    assert job.returncode is not None, f"the job hung and was killed after {job.seconds:.0f} s"
    failed_at = float((root / "failing" / "failed_rank1.time").read_text())
    teardown = job.ended_at - failed_at
    evidence.metric("teardown_seconds_after_failure", teardown, unit="s", threshold=cfg["max_teardown_seconds"],
                    direction="lower", key=True)
    evidence.metric("job_seconds_including_startup", job.seconds, unit="s")
    assert job.returncode != 0
    assert "ChildFailedError" in job.output and "Root Cause" in job.output
    root_cause = job.output.split("Root Cause", 1)[1]  # torchrun's summary names the failing rank
    assert re.search(r"rank\s*:\s*1 ", root_cause), root_cause[:800]
    assert "InjectedFailure: rank 1: injected failure at step 3" in root_cause
    assert not (root / "failing" / "model.safetensors").exists(), "a failed job must not write a model"
    assert teardown <= cfg["max_teardown_seconds"]


@pytest.mark.gpu
def test_nccl_two_gpus_equal_one(cfg, tmp_path, seed):
    if torch.cuda.device_count() < 2:
        pytest.skip(f"needs >= 2 CUDA devices for NCCL; found {torch.cuda.device_count()}")
    common = ["--global-batch", str(cfg["global_batch"]), "--seed", str(seed), "--steps", str(cfg["steps"]),
              "--backend", "nccl"]
    one = launch("nccl1", 1, [*common, "--out", str(tmp_path / "nccl1")], tmp_path).wait(cfg["job_timeout_s"])
    two = launch("nccl2", 2, [*common, "--out", str(tmp_path / "nccl2")], tmp_path).wait(cfg["job_timeout_s"])
    assert one.returncode == 0 and two.returncode == 0, one.output[-2000:] + two.output[-2000:]
    assert _weights_diff(tmp_path / "nccl1", tmp_path / "nccl2") <= cfg["max_abs_weight_diff"]
