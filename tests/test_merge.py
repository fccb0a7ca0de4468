"""Merging distilled sets (tiny backbone): every merger, the multi-task distiller, the CLI, and one-line refusals."""
import itertools
from dataclasses import replace

import pytest
import torch

from ddplug.cli import main
from ddplug.core import DDPlugError
from ddplug.distill import AttentionDistiller
from ddplug.distilled import DistilledSet, load_set, save_set
from ddplug.evaluate import evaluate_set
from ddplug.merge import merge_sets, pair_parts
from ddplug.models import load_backbone, tiny
from ddplug.tasks import joint_task, load_task

OPTS = dict(steps=4, seq_len=8, batch_size=16, eval_every=2, eval_size=40, lr_embeds=1e-2, init_lr=0.3)
ANIMALS = ["cat", "dog", "horse", "sheep", "goat", "mouse", "lion", "tiger", "bear", "wolf"]
FOODS = ["bread", "rice", "apple", "pear", "cheese", "soup", "cake", "plum", "bean", "corn"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, word_task_csv):
    tmp = tmp_path_factory.mktemp("merge")
    paths = {"words": str(word_task_csv("words")), "things": str(word_task_csv("things", ANIMALS, FOODS))}
    tasks = {k: load_task(v) for k, v in paths.items()}
    tasks["words*things"] = joint_task(tasks["words"], tasks["things"])
    bb = load_backbone("tiny")
    sets = [AttentionDistiller(**OPTS).distill(tasks[k], bb, progress=False) for k in ("words", "things")]
    files = [save_set(s, tmp / f"{s.tasks[0]}.safetensors") for s in sets]
    return {"tmp": tmp, "paths": paths, "tasks": tasks, "bb": bb, "sets": sets, "files": files}


def test_sequence_pairs_every_example_with_outer_product_labels(setup):
    a, b = (s.detach().parts[0] for s in setup["sets"])
    a.labels = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    part = pair_parts(a, b)
    assert part.size == a.size * b.size and part.seq_len == a.seq_len + b.seq_len - 1
    for i, j in itertools.product(range(a.size), range(b.size)):
        k = i * b.size + j
        assert torch.equal(part.inputs_embeds[k], torch.cat([a.inputs_embeds[i], b.inputs_embeds[j, 1:]]))
        assert torch.allclose(part.labels[k].view(2, 2), torch.outer(a.labels[i], b.labels[j]))
    # [CLS]-row attention labels: A's row then B's row without its [CLS] key, renormalised
    row = torch.cat([a.attention_labels[1], b.attention_labels[0][..., 1:]], -1)
    assert torch.allclose(part.attention_labels[2], row / row.sum(-1, keepdim=True))


def test_joint_merge_starts_from_each_task_own_update_and_learns(setup):
    tasks, bb, sets = setup["tasks"], setup["bb"], setup["sets"]
    merged = merge_sets(sets, "joint", bb, tasks, steps=4, eval_every=2, eval_size=40, batch_size=16)
    assert merged.tasks == ["words", "things"] and merged.weights is not None and merged.meta["merge"] == "joint"
    assert merged.meta["sources"][0]["tasks"] == ["words"] and len(merged.meta["history"]) == 4
    ev = evaluate_set(merged, tasks, bb, models=2)
    assert set(ev.summary()) == {"words", "things"} and "| overall |" in ev.table(training_loss=True)
    more = DistilledSet([replace(sets[1].parts[0], task="more")], sets[1].lrs, sets[1].meta)
    with pytest.raises(DDPlugError, match="inner-loss weights"):  # its weights would be lost in a merge of merges
        merge_sets([merged, more], "batch")


def test_multi_task_distillation_from_scratch(setup):
    tasks, bb = setup["tasks"], setup["bb"]
    dset = AttentionDistiller(**OPTS).distill([tasks["words"], tasks["things"]], bb, progress=False)
    assert dset.tasks == ["words", "things"] and dset.size == 4 and dset.meta["task"] == "words+things"
    assert torch.allclose(dset.weights.sum(), torch.tensor(1.0), atol=0.2)  # starts at the plain mean, then learned


def test_cli_merge_and_evaluate(setup, capsys):
    files, paths, tmp = setup["files"], setup["paths"], setup["tmp"]
    out = tmp / "seq.safetensors"
    assert main(["merge", "--strategy", "sequence", *map(str, files), "-o", str(out)]) == 0
    merged = load_set(out)
    assert merged.tasks == ["words*things"] and merged.meta["merge"] == "sequence"
    joint_spec = f"{paths['words']}*{paths['things']}"
    assert main(["evaluate", str(out), "--task", f"words*things={joint_spec}", "--models", "2", "--quiet"]) == 0
    assert "| words*things |" in capsys.readouterr().out
    out = tmp / "learned.safetensors"
    assert main(["merge", "--strategy", "learned", *map(str, files), "-o", str(out), "--steps", "2", "--quiet",
                 "--task", f"words={paths['words']}", "--task", f"things={paths['things']}", "--option", "eval_size=40",
                 "--option", "hidden=16"]) == 0
    assert load_set(out).meta["network"]["hidden"] == 16


def test_bad_merges_are_one_line(setup, capsys):
    files, sets, tmp = setup["files"], setup["sets"], setup["tmp"]
    other = save_set(AttentionDistiller(**{**OPTS, "steps": 1}).distill(setup["tasks"]["things"], tiny(seed=1), progress=False),
                     tmp / "other.safetensors")
    (tmp / "broken.safetensors").write_bytes(files[0].read_bytes()[:200])
    for argv, why in [([files[0]], "at least two"), ([files[0], files[0]], "share a task"), ([files[0], other], "different backbone"),
                      ([files[0], tmp / "broken.safetensors"], "truncated")]:
        assert main(["merge", *map(str, argv), "-o", str(tmp / "x.safetensors")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and why in err and "\n" not in err, err
    third = DistilledSet([replace(sets[1].parts[0], task="more")], sets[1].lrs, sets[1].meta)
    with pytest.raises(DDPlugError, match="sequence merge pairs two"):
        merge_sets(sets + [third], "sequence")
    with pytest.raises(DDPlugError, match="--layout 'diagonal'"):
        merge_sets(sets, "joint", setup["bb"], setup["tasks"], layout="diagonal")
