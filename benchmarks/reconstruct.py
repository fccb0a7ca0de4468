"""Speed of nearest-token reconstruction on the full minilm vocabulary (30,522 x 384), all methods in one run.

Methods, each returning the top-k tokens by cosine for a batch of query vectors:
  faiss (tuned)    ddplug-faiss as shipped: IndexFlatIP, BLAS threshold lowered during the search
  faiss (default)  the same index with faiss's own BLAS threshold (128,000 in faiss-cpu 1.15)
  faiss (tuned, 1 thread)  as tuned, with faiss's OpenMP threads capped at 1 during the search
  torch            ddplug's built-in reconstructor: a chunked matrix product and topk
  numpy            the same matrix product in numpy, argpartition for the top k

Queries are the word embeddings of real AG News validation sentences (all positions, padding included), in batches
of 64, 256 and 1,024 positions. Each method runs in blocks (an untimed warm-up run, then 3 timed runs), in 3 rounds
over the methods so that load from other processes falls on all of them alike; tokens/s come from each method's best
run, the median is kept in the JSON. Building the index is timed separately. Writes benchmarks/results/reconstruct.json and .md.

    .venv/bin/python benchmarks/reconstruct.py
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ddplug
from ddplug.models import load_backbone
from ddplug.plugins import registry
from ddplug.reconstruct import TorchReconstructor
from ddplug.tasks import load_task

BATCHES = (64, 256, 1024)
TOP_K = 5
ROUNDS, RUNS = 3, 3
OUT = Path(__file__).parent / "results"


class NumpyNearest:
    "The baseline: unit-norm vocabulary in numpy, one matrix product, argpartition + sort for the top k."
    def __init__(self, backbone):
        table = backbone.word_embeddings.detach().float().numpy()
        self.table = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)

    def nearest(self, backbone, vectors, top_k):
        q = vectors.detach().float().numpy()
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        scores = q @ self.table.T
        part = np.argpartition(-scores, top_k - 1, axis=1)[:, :top_k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1)
        ids = np.take_along_axis(part, order, 1)
        return torch.from_numpy(ids), torch.from_numpy(np.take_along_axis(scores, ids, 1))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(methods: dict, backbone, queries) -> dict:
    """Time every method on `queries`: ROUNDS rounds over the methods, each a block of one untimed warm-up run and
    RUNS timed runs. Rounds spread load from other processes over all methods; the warm-up run in each block lets the
    previous method's idle BLAS / OpenMP threads (which spin for a while after a call) get out of the way."""
    times = {name: [] for name in methods}
    for _ in range(ROUNDS):
        for name, method in methods.items():
            method.nearest(backbone, queries, TOP_K)
            times[name] += [timed(lambda: method.nearest(backbone, queries, TOP_K)) for _ in range(RUNS)]
    return {name: {"seconds_min": min(t), "seconds_median": statistics.median(t), "runs": len(t),
                   "tokens_per_second": len(queries) / min(t), "tokens_per_second_median": len(queries) / statistics.median(t)}
            for name, t in times.items()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def main():
    import faiss
    load_at_start = os.getloadavg()
    backbone = load_backbone("minilm")
    vocab, hidden = backbone.word_embeddings.shape
    texts = load_task("ag_news")["validation"]["text"][: max(BATCHES) // 64]
    all_queries = backbone.embed(backbone.tokenize(texts, max_length=64)["input_ids"]).detach().reshape(-1, hidden)

    reconstructors = registry("reconstructors")
    methods = {"faiss (tuned)": reconstructors.create("faiss"),
               "faiss (default)": reconstructors.create("faiss", blas_threshold=None),
               "faiss (tuned, 1 thread)": reconstructors.create("faiss", threads=1),
               "torch": TorchReconstructor(),
               "numpy": NumpyNearest(backbone)}
    build = {"faiss": timed(lambda: methods["faiss (tuned)"]._index_for(backbone)),
             "torch": timed(lambda: methods["torch"]._index_for(backbone))}

    results, identical = {}, {}
    for n in BATCHES:
        queries = all_queries[:n]
        reference = methods["torch"].nearest(backbone, queries, TOP_K)[0][:, 0]
        for name, r in measure(methods, backbone, queries).items():
            results.setdefault(name, {})[str(n)] = r
            identical.setdefault(name, {})[str(n)] = bool(torch.equal(methods[name].nearest(backbone, queries, TOP_K)[0][:, 0], reference))
            print(f"{n:>5} queries  {name:<24} {r['tokens_per_second']:>10,.0f} tokens/s  (best {r['seconds_min'] * 1000:.1f} ms, "
                  f"median {r['seconds_median'] * 1000:.1f} ms)", flush=True)
    for name in results:
        for n in results[name]:
            results[name][n]["ratio_to_torch"] = results[name][n]["tokens_per_second"] / results["torch"][n]["tokens_per_second"]

    report = {
        "benchmark": "nearest-token reconstruction speed",
        "what": f"top-{TOP_K} nearest tokens by cosine over the full minilm vocabulary ({vocab:,} x {hidden})",
        "queries": f"word embeddings of the first {len(texts)} AG News validation sentences at max_length 64, first N positions",
        "timing": f"{ROUNDS} rounds over the methods, each a block of a warm-up run and {RUNS} timed runs; tokens/s from the best run (median also kept); index build excluded",
        "batches": list(BATCHES),
        "results": results,
        "top1_identical_to_torch": identical,
        "index_build_seconds": build,
        "faiss_blas_threshold_default": faiss.cvar.distance_compute_blas_threshold,
        "hardware": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "faiss_threads": faiss.omp_get_max_threads(), "machine": platform.machine(),
                     "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()},
        "versions": {"python": platform.python_version(), "ddplug": ddplug.__version__, "torch": torch.__version__,
                     "faiss": faiss.__version__, "numpy": np.__version__},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "reconstruct.json").write_text(json.dumps(report, indent=2) + "\n")
    (OUT / "reconstruct.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report) -> str:
    head = "| method | " + " | ".join(f"{n} queries: tokens/s | vs torch" for n in report["batches"]) + " | same top-1 as torch |"
    rule = "|---|" + "---:|---:|" * len(report["batches"]) + "---|"
    rows = []
    for name, by_batch in report["results"].items():
        cells = " | ".join(f"{by_batch[str(n)]['tokens_per_second']:,.0f} | {by_batch[str(n)]['ratio_to_torch']:.2f}x"
                           for n in report["batches"])
        same = all(report["top1_identical_to_torch"][name].values())
        rows.append(f"| {name} | {cells} | {'yes' if same else 'NO'} |")
    hw = report["hardware"]
    loaded = max(hw["load_average_at_start"][0], hw["load_average_at_end"][0]) > 0.5 * hw["cpu_count"]
    busy = (" (other processes were competing for the CPUs; faiss's multi-threaded BLAS path suffers most from that, "
            "so its numbers vary most between runs)") if loaded else ""
    return "\n".join([
        "# Nearest-token reconstruction speed", "",
        f"{report['what']}. Queries: {report['queries']}. Timing: {report['timing']}.", "",
        head, rule, *rows, "",
        f"Index build: faiss {report['index_build_seconds']['faiss'] * 1000:.0f} ms, torch (normalised copy) "
        f"{report['index_build_seconds']['torch'] * 1000:.0f} ms. faiss's default BLAS threshold: "
        f"{report['faiss_blas_threshold_default']:,}.", "",
        f"Hardware: {hw['cpu']}, {hw['cpu_count']} CPUs (torch {hw['torch_threads']} threads, faiss {hw['faiss_threads']}); "
        f"load average (1, 5, 15 min) at the start {', '.join(f'{x:.1f}' for x in hw['load_average_at_start'])}, "
        f"at the end {', '.join(f'{x:.1f}' for x in hw['load_average_at_end'])}{busy}. "
        f"Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + f". Run {report['date']}.", ""])


if __name__ == "__main__":
    sys.exit(main())
