"""Data-parallel distillation and evaluation with two real processes (torchrun, gloo, tiny backbone), and precision."""
import json
import math
import socket
import subprocess
import sys

import pytest
import torch

from ddplug.core import DDPlugError
from ddplug.distill import AttentionDistiller
from ddplug.distilled import load_set
from ddplug.evaluate import evaluate_set
from ddplug.models import load_backbone
from ddplug.tasks import load_task

# per-process batch B = 8: two processes must equal one process with batch 16
OPTS = dict(steps=8, seq_len=8, eval_every=4, eval_size=60, pooling="mean", lr_embeds=1e-2, init_lr=0.1)
FLAGS = ["--steps", "8", "--seq-len", "8", "--eval-every", "4", "--eval-size", "60", "--pooling", "mean",
         "--lr-embeds", "0.01", "--init-lr", "0.1"]


@pytest.fixture(scope="module")
def data(word_task_csv):
    return word_task_csv("toy")


@pytest.fixture(scope="module")
def bb():
    return load_backbone("tiny")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, nproc=2):
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "ddplug", *args]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def parallel_set(data, tmp_path_factory):
    "A set distilled by 2 processes with per-process batch 8, through the CLI."
    out = tmp_path_factory.mktemp("par") / "toy.safetensors"
    run = torchrun("distill", "--task", str(data), "--backbone", "tiny", "--batch-size", "8", *FLAGS, "--quiet", "-o", str(out))
    assert run.stdout.count("wrote ") == 1, run.stdout  # only rank 0 writes and prints
    return out


def max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a.parts[0].tensors().values(), b.parts[0].tensors().values()))


def test_two_processes_equal_one_process_with_double_batch(data, bb, parallel_set):
    par = load_set(parallel_set)
    assert par.meta["processes"] == 2
    task = load_task(str(data))
    serial = AttentionDistiller(**OPTS, batch_size=16).distill(task, bb, progress=False)
    assert serial.meta["processes"] == 1
    assert max_diff(par, serial) < 1e-4, max_diff(par, serial)
    assert torch.allclose(par.lrs, serial.lrs, atol=1e-5)
    assert [h["outer_loss"] for h in par.meta["history"]] == pytest.approx([h["outer_loss"] for h in serial.meta["history"]], abs=1e-5)
    assert [h.get("val_acc") for h in par.meta["history"]] == [h.get("val_acc") for h in serial.meta["history"]]
    assert par.meta["best_step"] == serial.meta["best_step"]
    # the comparison can tell: one process with the per-process batch (8) takes other rows and ends elsewhere
    half = AttentionDistiller(**OPTS, batch_size=8).distill(task, bb, progress=False)
    assert max_diff(half, serial) > 1e-3


def test_parallel_evaluation_equals_serial(data, bb, parallel_set, tmp_path):
    out = tmp_path / "ev.json"
    run = torchrun("evaluate", str(parallel_set), "--task", str(data), "--models", "3", "--limit", "40", "--quiet",
                   "--json", str(out))
    assert run.stdout.count("| toy |") == 1  # one table, from rank 0
    par = json.loads(out.read_text())
    assert par["info"]["processes"] == 2 and [r["seed"] for r in par["runs"]] == [0, 1, 2]  # 2 + 1 models, by seed
    serial = evaluate_set(load_set(parallel_set), load_task(str(data)), bb, models=3, limit=40)
    for p, s in zip(par["runs"], serial.runs):
        assert p["toy"]["post"] == pytest.approx(s["toy"]["post"], abs=1e-5)
        assert p["toy"]["pre"] == pytest.approx(s["toy"]["pre"], abs=1e-5)
    for key, (m, sd) in serial.summary()["toy"].items():
        assert par["summary"]["toy"][key] == pytest.approx([m, sd], abs=1e-5), key


def test_precision_option(data, bb):
    task = load_task(str(data))
    with pytest.raises(DDPlugError, match="--precision 'fp16' is not valid"):
        AttentionDistiller(precision="fp16").distill(task, bb, progress=False)
    fp32 = AttentionDistiller(**{**OPTS, "steps": 2}, batch_size=8).distill(task, bb, progress=False)
    bf16 = AttentionDistiller(**{**OPTS, "steps": 2}, batch_size=8, precision="bf16").distill(task, bb, progress=False)
    losses = [h["outer_loss"] for h in bf16.meta["history"]]
    assert all(math.isfinite(v) for v in losses)
    # bf16 forward passes: close to fp32 (8 bits of mantissa), yet not the same numbers
    assert losses == pytest.approx([h["outer_loss"] for h in fp32.meta["history"]], rel=0.05)
    assert 0 < max_diff(bf16, fp32) < 0.05
