"""Ablations of the attention distiller: each config is distilled and evaluated, one JSON line per config.

    python benchmarks/ablate.py ag_news '{"steps": 120}' '{"steps": 120, "pooling": "mean"}'

Appends to benchmarks/results/ablations.jsonl and rewrites benchmarks/results/ablations.md from all lines.
Evaluation: 5 fresh models on the first 1,000 test sentences (a quick look; the benchmark uses the full protocol).
"""
import json
import sys
import time
from pathlib import Path

from ddplug.demo import hardware, peak_memory_mb
from ddplug.distill import AttentionDistiller, DistillConfig
from ddplug.evaluate import evaluate_set
from ddplug.models import load_backbone
from ddplug.tasks import load_task

RESULTS = Path(__file__).parent / "results"
DEFAULTS = DistillConfig().__dict__


def render(lines):
    out = ["| task | options (differences from the defaults) | outer steps | s/step | best val acc (step) | test acc (5 models, 1,000 sentences) |",
           "|---|---|---|---|---|---|"]
    for r in lines:
        diff = {k: v for k, v in r["options"].items() if DEFAULTS.get(k) != v and k not in ("steps", "eval_every", "eval_size")}
        out.append(f"| {r['task']} | {json.dumps(diff) if diff else 'defaults'} | {r['options']['steps']} | {r['s_per_step']:.2f} | "
                   f"{r['val_best']:.3f} ({r['best_step']}) | {r['acc'][0]:.3f} ± {r['acc'][1]:.3f} |")
    return "\n".join(out) + "\n"


def main():
    task_name, configs = sys.argv[1], [json.loads(c) for c in sys.argv[2:]]
    backbone, task = load_backbone("minilm"), load_task(task_name)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "ablations.jsonl"
    for cfg in configs:
        t = time.time()
        dset = AttentionDistiller(**cfg).distill(task, backbone, progress=False)
        s = evaluate_set(dset, task, backbone, models=5, limit=1000).summary()[task.name]
        rec = {"task": task_name, "options": dset.meta["options"], "acc": s["acc"], "f1": s["f1"], "loss": s["loss"],
               "pre_acc": s["pre_acc"], "val_best": dset.meta["metrics"]["val_acc"], "best_step": dset.meta["best_step"],
               "s_per_step": dset.meta["seconds_per_step"], "total_seconds": round(time.time() - t),
               "lrs": dset.lrs.tolist(), "peak_memory_mb": peak_memory_mb(), "hardware": hardware()}
        print(json.dumps(rec), flush=True)
        with log.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        lines = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
        (RESULTS / "ablations.md").write_text(render(lines))


if __name__ == "__main__":
    main()
