import json
import os
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss
import pytest
import torch

from ddplug.core import generator
from ddplug.models import load_backbone
from ddplug.plugins import registry
from ddplug.reconstruct import TorchReconstructor, reconstruct_set, sentences_as_set, token_recovery

SENTENCES = ["Oil prices rose sharply as supply worries grew between Monday and Friday.",
             "The striker scored twice in the second half to win the cup.",
             "A moving, beautifully acted film that never loses its nerve.",
             "Researchers unveiled a faster chip for mobile phones."]


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("minilm")


def test_found_through_the_entry_point():
    out = subprocess.run([sys.executable, "-m", "ddplug", "plugins", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    info = {p["name"]: p for p in json.loads(out.stdout)}["faiss"]
    assert info["source"] == "entry point" and info["registered"] == {"reconstructors": ["faiss"]}
    assert registry("reconstructors").get("faiss").plugin == "faiss"


def test_same_tokens_as_torch_on_real_sentences(minilm):
    dset = sentences_as_set(minilm, SENTENCES, max_length=24)
    by_torch = reconstruct_set(dset, minilm, "torch", top_k=5)[0]
    by_faiss = reconstruct_set(dset, minilm, "faiss", top_k=5)[0]
    assert torch.equal(by_faiss.ids, by_torch.ids)
    assert torch.allclose(by_faiss.cosines, by_torch.cosines, atol=1e-5)
    assert by_faiss.texts == by_torch.texts and by_faiss.texts[1] == "the striker scored twice in the second half to win the cup ."
    assert token_recovery(registry("reconstructors").create("faiss"), minilm, SENTENCES) == 1.0


def test_same_top_token_off_the_vocabulary(minilm):
    "Vectors between tokens, like distilled ones: the top-1 token agrees wherever the top two are not tied."
    x = sentences_as_set(minilm, SENTENCES, max_length=24).parts[0].inputs_embeds
    x = x + 0.05 * torch.randn(x.shape, generator=generator(0))
    ids_t, cos_t = TorchReconstructor().nearest(minilm, x, top_k=2)
    ids_f, cos_f = registry("reconstructors").create("faiss").nearest(minilm, x, top_k=2)
    clear = (cos_t[..., 0] - cos_t[..., 1]) > 1e-5
    assert clear.float().mean() > 0.95 and torch.equal(ids_t[..., 0][clear], ids_f[..., 0][clear])


def test_settings_are_restored_and_index_cached(minilm):
    before = faiss.cvar.distance_compute_blas_threshold, faiss.omp_get_max_threads()
    rec = registry("reconstructors").create("faiss", threads=1)
    ids, _ = rec.nearest(minilm, minilm.word_embeddings[:3], top_k=1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    assert (faiss.cvar.distance_compute_blas_threshold, faiss.omp_get_max_threads()) == before
    assert rec._index_for(minilm) is registry("reconstructors").create("faiss")._index_for(minilm)
    assert registry("reconstructors").create("faiss", blas_threshold=None).blas_threshold is None
