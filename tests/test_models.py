import pytest
import torch

from ddplug.core import DDPlugError
from ddplug.models import load_backbone, make_classifier


@pytest.mark.parametrize("name,hidden,layers,heads", [("tiny", 32, 2, 4), ("minilm", 384, 6, 12)])
def test_backbone_gives_logits_and_attentions(name, hidden, layers, heads):
    bb = load_backbone(name)
    assert (bb.hidden_size, bb.num_layers, bb.num_heads, bb.word_embeddings.shape[0]) == (hidden, layers, heads, 30522)
    model = make_classifier(bb, 4)
    batch = bb.tokenize(["the market rallied", "the team won the cup"], max_length=16)
    logits, att = model(**batch, output_attentions=True)
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    assert len(att) == layers and att[-1].shape == (2, heads, 16, 16)
    # the same sentence fed as word embeddings gives the same logits
    logits2, _ = model(inputs_embeds=bb.embed(batch["input_ids"]), attention_mask=batch["attention_mask"])
    assert torch.allclose(logits, logits2, atol=1e-5)


def test_minilm_is_the_real_pretrained_model():
    bb = load_backbone("minilm")
    batch = bb.tokenize(["a cat sits on the mat", "a kitten rests on a rug", "stock markets fell"], max_length=16)
    model = make_classifier(bb, 2, pooling="mean")
    with torch.no_grad():
        v, _ = model.features(**batch)
    v = torch.nn.functional.normalize(v, dim=-1)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3  # real sentence embeddings put paraphrases together


def test_multitask_forward_routes_to_named_heads():
    bb = load_backbone("tiny")
    model = make_classifier(bb, {"ag_news": 4, "sst2": 2}, head="mlp")
    batch = bb.tokenize(["one", "two", "three"], max_length=8)
    assert model(**batch, head="ag_news")[0].shape == (3, 4) and model(**batch, head="sst2")[0].shape == (3, 2)
    assert model.heads["ag_news"] is not model.heads["sst2"]
    with pytest.raises(DDPlugError, match="say which one"):
        model(**batch)


def test_saved_backbone_loads_from_folder_with_same_fingerprint(tmp_path):
    bb = load_backbone("tiny")
    path = bb.save(tmp_path / "enc")
    again = load_backbone(str(path))
    assert again.fingerprint() == bb.fingerprint() and again.name == str(path)


def test_unknown_backbone_is_one_line():
    with pytest.raises(DDPlugError) as e:
        load_backbone("/no/such/model")
    assert "cannot load backbone" in str(e.value) and "minilm, tiny" in str(e.value) and "\n" not in str(e.value)
