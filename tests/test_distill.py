"""The distiller on the tiny backbone: meta-gradient, learning, artifact, fingerprint, resume, shared inner loop."""
import subprocess
import sys

import pandas as pd
import pytest
import torch

from ddplug import distill as distill_mod
from ddplug.core import DDPlugError
from ddplug.distill import AttentionDistiller, DistillConfig, Learnables, outer_loss
from ddplug.distilled import DistilledSet, Part, load_set, save_set
from ddplug.evaluate import evaluate_set
from ddplug.learner import fresh_model, learn, split_params, train_on_set
from ddplug.models import load_backbone, tiny
from ddplug.tasks import load_task

OPTS = dict(steps=12, seq_len=8, batch_size=16, eval_every=4, eval_size=60, pooling="mean", lr_embeds=1e-2, init_lr=0.1)


@pytest.fixture(scope="module")
def toy(word_task_csv):
    return load_task(str(word_task_csv("toy")), label_names=["numbers", "colours"])


@pytest.fixture(scope="module")
def bb():
    return load_backbone("tiny")


def test_meta_gradient_matches_finite_differences(toy):
    bb64 = tiny()
    bb64.encoder.double()
    cfg = DistillConfig(seq_len=6, label_mode="unrestricted", attention="cls", pooling="mean", inner="all", init_lr=0.3)
    g = torch.Generator().manual_seed(0)
    embeds = torch.randn(2, 6, 32, generator=g, dtype=torch.float64) * 0.5
    att = torch.softmax(torch.randn(2, 2, 4, 6, generator=g, dtype=torch.float64), -1)
    start = DistilledSet([Part("toy", toy.label_names, embeds, torch.eye(2, dtype=torch.float64), None, att, [0, 1])],
                         torch.tensor([0.3]))
    learn_ = Learnables(start, cfg.label_mode).double()
    batch = bb64.tokenize(toy["train"]["text"][:8], max_length=6, padding="longest")
    batch = (batch["input_ids"], batch["attention_mask"], torch.as_tensor(toy["train"]["label"][:8]))
    meta = {"head": "linear", "pooling": "mean"}

    def loss_fn():
        return outer_loss(bb64, learn_.materialise(meta), [batch], head_seed=3, cfg=cfg)

    part = learn_.parts[0]
    params = [part.inputs_embeds, part.labels, part.attention, learn_.raw_lrs]
    grads = torch.autograd.grad(loss_fn(), params)
    eps = 1e-6
    for p, gr in zip(params, grads):
        v = torch.randn(p.shape, generator=g, dtype=torch.float64)
        p.data += eps * v
        up = loss_fn().item()
        p.data -= 2 * eps * v
        down = loss_fn().item()
        p.data += eps * v
        numeric = (up - down) / (2 * eps)
        analytic = (gr * v).sum().item()
        assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), (p.shape, numeric, analytic)


def test_distilled_set_beats_its_initialisation(toy, bb):
    distilled = AttentionDistiller(**{**OPTS, "steps": 30, "eval_every": 10}).distill(toy, bb, progress=False)
    start = AttentionDistiller(**{**OPTS, "steps": 1, "lr_embeds": 0.0, "lr_labels": 0.0, "lr_attention": 0.0,
                                  "lr_lr": 0.0}).distill(toy, bb, progress=False)
    after = evaluate_set(distilled, toy, bb, models=4).summary()["toy"]["acc"][0]
    before = evaluate_set(start, toy, bb, models=4).summary()["toy"]["acc"][0]
    assert after > before + 0.2, (before, after)


def test_round_trip_and_fingerprint_refusal(toy, bb, tmp_path):
    dset = AttentionDistiller(**{**OPTS, "steps": 3}).distill(toy, bb, progress=False)
    path = save_set(dset, tmp_path / "toy.safetensors")
    back = load_set(path, backbone=bb)
    for a, b in zip(dset.parts[0].tensors().values(), back.parts[0].tensors().values()):
        assert torch.equal(a, b)
    assert torch.equal(dset.lrs, back.lrs) and back.meta["history"] == dset.meta["history"]
    e1 = evaluate_set(dset, toy, bb, models=2).runs
    e2 = evaluate_set(back, toy, bb, models=2).runs
    assert e1 == e2
    back.meta["saved_at"] = "2000-01-01T00:00:00"  # a re-saved set records its own save, not the first one
    assert load_set(save_set(back, tmp_path / "again.safetensors")).meta["saved_at"] != "2000-01-01T00:00:00"
    with pytest.raises(DDPlugError, match="distilled on backbone 'tiny'"):
        load_set(path, backbone=tiny(seed=1))
    path.with_name("cut.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(DDPlugError, match="truncated"):
        load_set(path.with_name("cut.safetensors"))


def test_selected_start_teaches_at_least_as_well_as_prototypes(toy, bb, monkeypatch):
    monkeypatch.setattr(distill_mod, "PROTOTYPE_POOL", 12)
    monkeypatch.setattr(distill_mod, "SELECT_SIZE", 80)
    cfg = DistillConfig(per_class=2, seq_len=8, pooling="mean")
    picks = {init: choose(toy, bb, cfg, torch.Generator().manual_seed(0))
             for init, choose in (("prototype", distill_mod.prototypes), ("selected", distill_mod.selected))}
    assert toy.labels("train")[picks["selected"]].tolist() == [0, 0, 1, 1]
    # the one-step model of each start (class score: summed dot products with its examples) on held-out sentences
    feats = lambda rows: distill_mod.pooled_vectors(toy, bb, rows, cfg)
    held_out = list(range(len(toy["train"]) - 100, len(toy["train"])))
    gold, pooled = toy.labels("train")[held_out], feats(held_out)
    def accuracy(rows):
        scores = pooled @ feats(rows).T
        return (scores.reshape(-1, 2, 2).sum(-1).argmax(1) == gold).float().mean().item()
    assert accuracy(picks["selected"]) >= accuracy(picks["prototype"]) - 0.05


def test_resume_equals_uninterrupted_run(toy, bb, tmp_path, monkeypatch):
    whole = AttentionDistiller(**OPTS).distill(toy, bb, progress=False)
    calls = {"n": 0}
    real = distill_mod.outer_loss

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    ckpt = tmp_path / "run.ckpt.safetensors"
    monkeypatch.setattr(distill_mod, "outer_loss", flaky)
    with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
        AttentionDistiller(**OPTS).distill(toy, bb, checkpoint=ckpt, progress=False)
    monkeypatch.setattr(distill_mod, "outer_loss", real)
    resumed = AttentionDistiller(**OPTS).distill(toy, bb, checkpoint=ckpt, resume=True, progress=False)
    for a, b in zip(whole.parts[0].tensors().values(), resumed.parts[0].tensors().values()):
        assert torch.allclose(a, b, atol=1e-6)
    assert [h["outer_loss"] for h in whole.meta["history"]] == pytest.approx([h["outer_loss"] for h in resumed.meta["history"]], abs=1e-6)
    with pytest.raises(DDPlugError, match="other options"):
        AttentionDistiller(**{**OPTS, "seed": 1}).distill(toy, bb, checkpoint=ckpt, resume=True, progress=False)


@pytest.mark.parametrize("inner", ["head", "last:1", "all"])
def test_evaluator_and_inner_loop_train_the_same_weights(toy, bb, inner):
    dset = AttentionDistiller(**{**OPTS, "steps": 2, "inner": inner}).distill(toy, bb, progress=False)
    _, evaluated = train_on_set(bb, dset, seed=5)
    model = fresh_model(bb, dset, 5)
    trainable, frozen = split_params(model, dset.meta["inner"])
    distilled = learn(model, dset, trainable, frozen, dset.meta["attention_weight"], create_graph=True)
    assert len(distilled) > 0
    for name, p in distilled.items():
        assert torch.allclose(p, evaluated[name], atol=1e-6), name
    assert any(n.startswith("encoder.") for n in distilled) == (inner != "head")


def test_bad_options_are_one_line(toy, bb):
    with pytest.raises(DDPlugError, match="unknown option"):
        AttentionDistiller(stepz=3)
    with pytest.raises(DDPlugError, match="--label-mode 'fuzzy'"):
        AttentionDistiller(label_mode="fuzzy").distill(toy, bb, progress=False)
    with pytest.raises(DDPlugError, match="--attention-layers"):
        AttentionDistiller(attention_layers="7").distill(toy, bb, progress=False)


def ddplug(*args):
    return subprocess.run([sys.executable, "-m", "ddplug", *args], capture_output=True, text=True)


def test_cli_distill_then_evaluate(toy, tmp_path):
    data = tmp_path / "toy.csv"
    pd.DataFrame({"text": toy["train"]["text"], "label": toy["train"]["label"]}).to_csv(data, index=False)
    out = tmp_path / "toy.safetensors"
    run = ddplug("distill", "--task", str(data), "--backbone", "tiny", "--steps", "3", "--seq-len", "8",
                 "--batch-size", "8", "--eval-size", "20", "--pooling", "mean", "--quiet", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert out.exists() and out.with_name("toy.ckpt.safetensors").exists()
    run = ddplug("evaluate", str(out), "--task", str(data), "--models", "2", "--limit", "20", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "| toy |" in run.stdout and "Trained Acc." in run.stdout
    bad = ddplug("evaluate", str(tmp_path / "missing.safetensors"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such distilled-set file" in bad.stderr
    bad = ddplug("distill", "--task", "nope", "-o", str(out), "--backbone", "tiny")
    assert bad.returncode == 2 and "Valid tasks" in bad.stderr
