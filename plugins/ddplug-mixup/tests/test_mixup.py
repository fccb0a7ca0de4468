"""ddplug-mixup: found through its entry point, usable from the `ddplug` command, and the mixed examples are what
the module docstring says."""
import itertools
import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd
import pytest
import torch

from ddplug.cli import main
from ddplug.core import DDPlugError
from ddplug.distill import AttentionDistiller
from ddplug.distilled import DistilledSet, Part, load_set, save_set
from ddplug.learner import fresh_model, inner_loss, part_losses, soft_cross_entropy
from ddplug.merge import merge_sets
from ddplug.models import load_backbone
from ddplug.plugins import registry
from ddplug.tasks import load_task
from ddplug_mixup import MixupMerger, fit, mix_into

WORDS = {"numbers": ["one", "two", "three", "four", "five", "six", "seven", "eight"],
         "colours": ["red", "blue", "green", "pink", "grey", "black", "white", "brown"]}
THINGS = {"animals": ["cat", "dog", "horse", "sheep", "goat", "mouse", "lion", "tiger"],
          "foods": ["bread", "rice", "apple", "pear", "cheese", "soup", "cake", "plum"]}


def write_task(path, classes):
    "A toy task as a CSV file: three-word sentences of one class's words, string labels."
    rows = [(" ".join(t), label) for label, words in classes.items() for t in itertools.product(words, words[:4], words[4:])]
    pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    "Two toy tasks distilled on the tiny backbone (2 examples per class; lengths 8 and 6), saved as a and b."
    tmp = tmp_path_factory.mktemp("mixup")
    bb = load_backbone("tiny")
    out = {"dir": tmp}
    for key, name, classes, seq_len in (("a", "words", WORDS, 8), ("b", "things", THINGS, 6)):
        out[name] = write_task(tmp / f"{name}.csv", classes)
        dset = AttentionDistiller(steps=2, per_class=2, seq_len=seq_len, batch_size=8, eval_every=0, eval_size=20,
                                  eval_models=1).distill(load_task(str(out[name])), bb, progress=False)
        out[key] = save_set(dset, tmp / f"{key}.safetensors")
    return out


@pytest.fixture(scope="module")
def sets(files):
    return [load_set(files["a"]), load_set(files["b"])]


def test_found_through_the_entry_point():
    entry = registry("mergers").get("mixup")
    assert entry.plugin == "mixup" and entry.factory is MixupMerger
    out = subprocess.run([sys.executable, "-m", "ddplug", "plugins", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = {p["name"]: p for p in json.loads(out.stdout)}["mixup"]
    assert info["source"] == "entry point" and info["version"] == "0.1.0" and info["registered"] == {"mergers": ["mixup"]}


def test_listed_by_the_command(capsys):
    assert main(["plugins"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("mixup "))
    assert "entry point" in line and "mergers: mixup" in line
    assert main(["mergers"]) == 0 and "mixup" in capsys.readouterr().out


def test_merge_and_evaluate_from_the_command(files, capsys):
    merged_path = files["dir"] / "m.safetensors"
    assert main(["merge", "--strategy", "mixup", str(files["a"]), str(files["b"]), "-o", str(merged_path),
                 "--option", "count=3", "--option", "alpha=0.5", "--quiet"]) == 0
    merged = load_set(merged_path)
    assert merged.tasks == ["words", "things"] and [p.size for p in merged.parts] == [4 + 3, 4 + 3]
    assert merged.meta["merge"] == "mixup" and merged.meta["mixup"]["alpha"] == 0.5 and len(merged.meta["mixup"]["mixes"]) == 3
    report = files["dir"] / "ev.json"
    assert main(["evaluate", str(merged_path), "--task", f"words={files['words']}", "--task", f"things={files['things']}",
                 "--models", "2", "--limit", "20", "--quiet", "--json", str(report)]) == 0
    summary = json.loads(report.read_text())["summary"]
    assert set(summary) >= {"words", "things"} and all(0 <= summary[t]["acc"][0] <= 1 for t in ("words", "things"))


def test_mixed_examples_are_as_documented(sets):
    merged = merge_sets(sets, "mixup", load_backbone("tiny"), alpha=0.4, count=5, seed=3)
    a, b = (s.parts[0] for s in sets)
    ma, mb = merged.parts
    # the original examples come first, unchanged (the batch merge); then the mixes of the pair, in draw order
    assert torch.equal(ma.inputs_embeds[:a.size], a.inputs_embeds) and torch.equal(mb.labels[:b.size], b.labels)
    mixes = merged.meta["mixup"]["mixes"]
    assert len(mixes) == 5 and all(m["tasks"] == ["words", "things"] and 0 < m["lam"] < 1 for m in mixes)
    # each task's 4 examples are all used before any is used again
    assert all(sorted(m["examples"][side] for m in mixes[:4]) == [0, 1, 2, 3] for side in (0, 1))
    for k, m in enumerate(mixes):
        (i, j), lam = m["examples"], torch.tensor(m["lam"])
        # a is 8 positions long, b is 6: b's example is padded with 2 masked zero vectors for part a, a's cut for part b
        xb = torch.cat([b.inputs_embeds[j], torch.zeros(2, b.inputs_embeds.shape[-1])])
        assert torch.allclose(ma.inputs_embeds[a.size + k], lam * a.inputs_embeds[i] + (1 - lam) * xb, atol=1e-6)
        assert torch.allclose(mb.inputs_embeds[b.size + k], (lam * a.inputs_embeds[i] + (1 - lam) * xb)[:6], atol=1e-6)
        assert torch.allclose(ma.labels[a.size + k], lam * a.labels[i]) and torch.allclose(mb.labels[b.size + k], (1 - lam) * b.labels[j])
        assert torch.equal(ma.attention_mask[a.size + k], torch.maximum(a.attention_mask[i], fit(b.attention_mask[j:j + 1], 8)[0]))
        att = lam * a.attention_labels[i] + (1 - lam) * fit(b.attention_labels[j:j + 1], 8, (3,))[0]
        assert torch.allclose(ma.attention_labels[a.size + k], att / att.sum(-1, keepdim=True), atol=1e-6)
    assert torch.allclose(mb.attention_labels.sum(-1), torch.ones(mb.attention_labels.shape[:-1]), atol=1e-5)
    # soft cross-entropy is linear in the target: the two copies carry λ·CE_a + (1 − λ)·CE_b of the mixed input
    logits, lam = torch.randn(2), torch.tensor(mixes[0]["lam"])
    i = mixes[0]["examples"][0]
    assert torch.allclose(soft_cross_entropy(logits, ma.labels[a.size]), lam * soft_cross_entropy(logits, a.labels[i]))
    # the draws are seeded: the same seed gives the same set, another seed another one
    again = merge_sets(sets, "mixup", alpha=0.4, count=5, seed=3)
    assert torch.equal(again.parts[0].inputs_embeds, ma.inputs_embeds)
    assert merge_sets(sets, "mixup", alpha=0.4, count=5, seed=4).meta["mixup"]["mixes"] != mixes
    assert torch.allclose(merged.lrs, torch.stack([s.lrs for s in sets]).mean(0))


def test_inner_loss_adds_to_the_batch_merge(sets):
    "The inner loss is the sum over all examples / the number of original ones: without mixes, the batch merge's loss."
    bb = load_backbone("tiny")
    model = fresh_model(bb, merge_sets(sets, "batch"), seed=0)
    params = dict(model.named_parameters())
    merged = merge_sets(sets, "mixup", count=3)
    assert merged.weights.tolist() == [7 / 8, 7 / 8]  # (4 + 3) / (4 + 4) for each part
    per_example = torch.cat([part_losses(model, params, p)[0] for p in merged.parts])
    assert torch.allclose(inner_loss(model, params, merged)[0], per_example.sum() / 8)
    batch, none = merge_sets(sets, "batch"), merge_sets(sets, "mixup", count=0)
    assert none.size == batch.size and torch.allclose(inner_loss(model, params, none)[0], inner_loss(model, params, batch)[0])


def test_every_row_attention_and_unmatched_attention():
    "Attention labels of every row are mixed block by block; a partner without attention labels leaves the own ones."
    rows = lambda n, length: torch.softmax(torch.randn(n, 1, 2, length, length), -1)
    a = Part("a", ["x", "y"], torch.randn(2, 5, 4), torch.eye(2), attention_labels=rows(2, 5), attention_layers=[1])
    b = Part("b", ["u", "v"], torch.randn(2, 3, 4), torch.eye(2), attention_labels=rows(2, 3), attention_layers=[1])
    c = Part("c", ["p", "q"], torch.randn(2, 5, 4), torch.eye(2))
    lam = torch.tensor([0.25])
    mixed = mix_into(a, torch.tensor([1]), b, torch.tensor([0]), lam)["attention_labels"][0]
    assert mixed.shape == (1, 2, 5, 5) and torch.allclose(mixed.sum(-1), torch.ones(1, 2, 5))
    # rows beyond b's length hold a's rows only, renormalised back to a's own rows
    assert torch.allclose(mixed[..., 3:, :], a.attention_labels[1, ..., 3:, :], atol=1e-6)
    assert torch.equal(mix_into(a, torch.tensor([1]), c, torch.tensor([0]), lam)["attention_labels"][0], a.attention_labels[1])
    assert "attention_labels" not in mix_into(c, torch.tensor([0]), a, torch.tensor([1]), lam)


def test_bad_input_is_refused(sets, files, capsys):
    other = sets[1].detach()
    other.meta["backbone_fingerprint"] = "0000"
    for bad, why in [([sets[0]], "at least two"), ([sets[0], sets[0]], "share a task"), ([sets[0], other], "different backbone")]:
        with pytest.raises(DDPlugError, match=why):
            merge_sets(bad, "mixup")
    for options, why in [({"alpha": 0}, "alpha must be positive"), ({"count": -1}, "count must be")]:
        with pytest.raises(DDPlugError, match=why):
            MixupMerger(**options)
    assert main(["merge", "--strategy", "mixup", str(files["a"]), "-o", str(files["dir"] / "x.safetensors"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: merging needs at least two distilled sets") and "\n" not in err
