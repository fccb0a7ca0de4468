"""What a set that moves only the head can reach: a linear head trained to convergence on frozen pooled vectors.

With the default `inner="head"`, one step on a distilled set trains a linear head over the frozen pretrained encoder,
so no such set can teach more than the best linear head on that encoder's pooled vectors. This benchmark trains that
head on many real sentences (AdamW, several epochs) for each task and sets it next to the distilled sets' accuracy and
full fine-tuning, both read from the stored results of benchmarks/distill.py and benchmarks/merge.py.

    python benchmarks/ceiling.py --tasks ag_news sst2 'ag_news*sst2' --max-train 8000 --epochs 20

Writes benchmarks/results/ceiling.json and ceiling.md. After a new `make bench` or merge run, `--reuse` keeps the
stored head curves (same settings) and only re-reads the distilled and fine-tuned accuracies.
"""
import argparse
import json
import os
import time
from pathlib import Path

import ddplug
from ddplug.demo import hardware
from ddplug.models import load_backbone
from ddplug.tasks import JOINT, load_task
from ddplug.transfer import head_curve

RESULTS = Path(__file__).parent / "results"


def stored(name: str) -> dict:
    "A stored benchmark result, or {} when that benchmark has not been run."
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def distilled_acc(task: str, distill: dict, merge: dict) -> tuple[float | None, str]:
    "The stored distilled accuracy of `task` and where it comes from."
    if task in distill.get("tasks", {}):
        return distill["tasks"][task]["distilled"]["summary"]["acc"][0], "distill.json"
    best = None, "not stored"
    for label, row in merge.get("rows", {}).items():
        acc = row["summary"].get(task, {}).get("acc", [None])[0]
        if acc is not None and (best[0] is None or acc > best[0]):
            best = acc, f"merge.json ({label})"
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["ag_news", "sst2", f"ag_news{JOINT}sst2"])
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--max-train", type=int, default=8000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--limit", type=int, default=2000, help="test rows of joint tasks (single tasks use the whole split)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the head curves of the stored ceiling.json when its settings match, and only re-read the "
                        "stored distilled and fine-tuned accuracies (after a new make bench or merge run)")
    args = p.parse_args()
    backbone = load_backbone(args.backbone)
    distill, merge, previous = stored("distill"), stored("merge"), stored("ceiling")
    settings = ("backbone", "max_train", "epochs", "limit")
    reusable = args.reuse and all(previous.get("args", {}).get(k) == getattr(args, k) for k in settings)
    load_start = os.getloadavg()[0]
    report = {"hardware": hardware(), "ddplug": ddplug.__version__, "args": vars(args), "tasks": {}}
    for name in args.tasks:
        t0 = time.time()
        kept = previous.get("tasks", {}).get(name) if reusable else None
        if kept:
            curve, seconds = kept["linear_head"], kept["seconds"]
        else:
            joint = JOINT in name
            curve = head_curve(load_task(name), backbone, epochs=args.epochs, max_train=args.max_train,
                               seq_len=128 if joint else 64, limit=args.limit if joint else None)
            seconds = round(time.time() - t0, 1)
        acc, source = distilled_acc(name, distill, merge)
        full = distill.get("tasks", {}).get(name, {}).get("full", {}).get("acc")
        report["tasks"][name] = {"linear_head": curve, "distilled_acc": acc, "distilled_from": source,
                                 "full_finetune_acc": full, "seconds": seconds, "head_reused": bool(kept)}
        print(name, f"linear head {curve['acc'][-1]:.3f}", f"distilled {acc}", f"full {full}", flush=True)
    report["hardware"].update(load_average_start=round(load_start, 2), load_average_end=round(os.getloadavg()[0], 2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ceiling.json").write_text(json.dumps(report, indent=1))
    fmt = lambda x: "" if x is None else f"{x:.3f}"
    lines = [f"Backbone {args.backbone}, mean pooling; linear head (AdamW 1e-3, batches of 32, {args.epochs} epochs) on the "
             f"frozen pooled vectors of up to {args.max_train:,} training sentences, accuracy after the last epoch on the "
             f"test split (joint tasks: first {args.limit:,} pairs). {report['hardware']['threads']} CPU threads, no GPU.",
             "", "| task | sentences | linear head, frozen encoder | distilled set, one step (stored) | full fine-tuning (stored) |",
             "|---|---|---|---|---|"]
    for name, r in report["tasks"].items():
        c = r["linear_head"]
        lines.append(f"| {name} | {c['train_sentences']:,} | {c['acc'][-1]:.3f} | {fmt(r['distilled_acc'])} | "
                     f"{fmt(r['full_finetune_acc'])} |")
    (RESULTS / "ceiling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
