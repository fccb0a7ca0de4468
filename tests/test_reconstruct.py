import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from ddplug.cli import main
from ddplug.core import DDPlugError, generator
from ddplug.distilled import save_set
from ddplug.models import load_backbone
from ddplug.plots import plot_set
from ddplug.reconstruct import (TorchReconstructor, clean_tokens, quality, reconstruct_set, sentences_as_set,
                                token_recovery)

SENTENCES = ["Oil prices rose 3.5% as supply worries grew between Monday and Friday.",
             "The striker scored twice in the second half to win the cup!",
             "A moving, beautifully acted film that never loses its nerve.",
             "Researchers unveiled a faster chip for mobile phones (Reuters)",
             "Naïve cafés in Zürich serve crème brûlée",
             "it's not a bad movie , just an unremarkable one"]


def ddplug(*args):
    return subprocess.run([sys.executable, "-m", "ddplug", *args], capture_output=True, text=True)


@pytest.mark.parametrize("name", ["tiny", "minilm"])
def test_real_sentences_are_recovered_exactly(name):
    bb = load_backbone(name)
    assert token_recovery(TorchReconstructor(), bb, SENTENCES) == 1.0
    assert token_recovery(TorchReconstructor(chunk_size=7), bb, SENTENCES) == 1.0  # chunking changes nothing


def test_vocabulary_tokens_are_their_own_nearest_on_tiny():
    bb = load_backbone("tiny")
    tokens = torch.arange(0, bb.word_embeddings.shape[0], 3)  # a third of them keeps it quick
    ids, _ = TorchReconstructor().nearest(bb, bb.word_embeddings[tokens], top_k=1)
    zero = bb.word_embeddings[tokens].norm(dim=-1) == 0  # [PAD]'s row is all zeros in a fresh BERT: no direction
    assert torch.equal(ids[~zero, 0], tokens[~zero]) and zero.sum() <= 1


@pytest.mark.parametrize("tokens,mask,text", [
    ("[CLS] the market between between rallied [SEP] [PAD] [PAD]", None, "the market between rallied"),
    ("ral ##lies ##lies today", None, "rallies today"),
    ("play ##ing play ##ing now", None, "playing now"),
    ("a b c d", [1, 1, 0, 1], "a b d"),
    ("b [SEP] b", None, "b"),
    ("##s start", None, "s start"),
    ("[PAD] [PAD]", None, ""),
])
def test_clean_up_rules(tokens, mask, text):
    assert clean_tokens(tokens.split(), mask) == text


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sets")
    bb = load_backbone("tiny")
    dset = sentences_as_set(bb, SENTENCES, [0, 0, 1, 0, 1, 1], ["news", "review"], task="toy", max_length=24)
    good = save_set(dset, tmp / "toy.safetensors")
    dset.meta["backbone_fingerprint"] = "0123456789abcdef"
    wrong = save_set(dset, tmp / "wrong.safetensors")
    return tmp, good, wrong


def test_masked_positions_are_skipped_and_raw_keeps_everything():
    bb = load_backbone("tiny")
    dset = sentences_as_set(bb, ["the cup final"], max_length=8)
    dset.parts[0].attention_mask[0, 2] = 0  # hide "cup"
    rec = reconstruct_set(dset, bb, top_k=2)[0]
    assert rec.texts == ["the final"] and rec.raw_texts == ["[CLS] the cup final [SEP] [PAD] [PAD] [PAD]"]
    assert rec.ids.shape == rec.cosines.shape == (1, 8, 2)


def test_quality_of_real_sentences_is_perfect():
    bb = load_backbone("tiny")
    dset = sentences_as_set(bb, SENTENCES[:3], max_length=24)
    q = quality(dset, reconstruct_set(dset, bb), bb, references={"real": ["unrelated words here", *SENTENCES]})[0]
    assert round(q["bleu"], 6) == round(q["chrf"], 6) == 100 and abs(q["mean_cosine"] - 1) < 1e-5
    assert [e["nearest"] for e in q["per_example"]][0].startswith("oil prices rose 3 . 5 %")


def test_cli_reconstruct_prints_tables_and_writes_files(saved):
    tmp, good, _ = saved
    out = ddplug("reconstruct", str(good), "--top-k", "3", "--json", str(tmp / "r.json"), "--csv", str(tmp / "r.csv"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("toy: 6 examples") and lines[1].split() == ["class", "example", "cosine", "text"]
    assert [l.split()[0] for l in lines[3:9]] == ["news"] * 3 + ["review"] * 3  # grouped by class
    assert "the striker scored twice in the second half to win the cup !" in out.stdout
    parts = json.loads((tmp / "r.json").read_text())
    example = parts[0]["examples"][1]
    assert example["class"] == "news" and example["raw"].startswith("[CLS] the striker")
    assert len(example["top_k"][0]["tokens"]) == 3 and example["top_k"][1]["cosines"][0] == pytest.approx(1, abs=1e-4)
    assert list(pd.read_csv(tmp / "r.csv").columns) == ["task", "example", "class", "mean_cosine", "text"]


def test_cli_raw_keeps_every_token(saved, capsys):
    assert main(["reconstruct", str(saved[1]), "--raw"]) == 0
    assert "[CLS] the striker" in capsys.readouterr().out


def test_cli_refuses_a_set_from_other_weights(saved, capsys):
    _, good, wrong = saved
    assert main(["reconstruct", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "fingerprint 0123456789abcdef" in err and len(err.strip().splitlines()) == 1
    assert main(["reconstruct", str(good), "--backbone", "tiny:1:32:2:4"]) == 2
    assert main(["reconstruct", str(good), "--reconstructor", "nope"]) == 2
    assert main(["plot", str(wrong), "-o", "x"]) == 2


def test_plots_are_written(saved, tmp_path, capsys):
    _, good, _ = saved
    data = tmp_path / "toy.csv"
    pd.DataFrame({"text": [f"{w} sentence number {i}" for i, w in enumerate(["market", "film"] * 20)],
                  "label": [0, 1] * 20}).to_csv(data, index=False)
    assert main(["plot", str(good), "-o", str(tmp_path / "plots"), "--task", str(data), "--n-real", "30"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "plots" / "tsne.png")]
    bb = load_backbone("tiny")
    dset = sentences_as_set(bb, SENTENCES, [0, 1, 0, 1, 0, 1], ["a", "b"], task="toy", max_length=16)
    part = dset.parts[0]
    part.attention_layers = [1]
    part.attention_labels = torch.softmax(torch.randn(6, 1, 4, 16, 16, generator=generator(0)), -1)
    dset.meta["history"] = [{"step": s, "outer_loss": 1 / (s + 1), **({"val_acc": 0.5} if s % 2 else {})} for s in range(6)]
    paths = plot_set(dset, bb, task=str(data), out_dir=tmp_path / "all", n_real=20)
    assert [p.name for p in paths] == ["tsne.png", "learning_curve.png", "attention-toy.png"]
    assert all(p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_plot_errors_name_the_fix(tmp_path):
    bb = load_backbone("tiny")
    dset = sentences_as_set(bb, SENTENCES[:2], task="no_such_task", max_length=8)
    with pytest.raises(DDPlugError, match="pass --task"):
        plot_set(dset, bb, out_dir=tmp_path)
    with pytest.raises(DDPlugError, match="has 4 labels but part 'no_such_task' has 2"):
        plot_set(dset, bb, task="ag_news", out_dir=tmp_path)


def test_wrong_hidden_size_is_one_line():
    with pytest.raises(DDPlugError, match="hidden size 32"):
        TorchReconstructor().nearest(load_backbone("tiny"), torch.zeros(2, 384))
