"""Distillation benchmark: distilled vs random real vs few-shot vs full fine-tuning, per task, in one run.

Writes benchmarks/results/distill.json (hardware, versions, options, seeds, every model's metrics) and
benchmarks/results/distill.md (the table). Example:

    python benchmarks/distill.py --tasks ag_news sst2 --models 20
"""
import argparse
import json
from pathlib import Path

import ddplug
from ddplug.baselines import FewShotDistiller, finetune_full
from ddplug.demo import baseline_draws, compare, hardware, results_table
from ddplug.distilled import save_set
from ddplug.models import load_backbone
from ddplug.tasks import load_task

RESULTS = Path(__file__).parent / "results"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=["ag_news", "sst2"])
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--models", type=int, default=20, help="fresh models (and real-example draws) per row")
    p.add_argument("--limit", type=int, default=None, help="test sentences per task (default: the whole split)")
    p.add_argument("--steps", type=int, default=300, help="outer distillation steps")
    p.add_argument("--fewshot-models", type=int, default=5)
    p.add_argument("--fewshot-steps", type=int, default=100)
    p.add_argument("--full-max-train", type=int, default=None, help="cap on sentences for full fine-tuning (default: all)")
    p.add_argument("--skip-full", action="store_true")
    p.add_argument("--option", action="append", default=[], metavar="KEY=JSON", help="distiller option, e.g. pooling='\"mean\"'")
    p.add_argument("--tag", default="distill", help="name of the result files")
    args = p.parse_args()
    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"hardware": hardware(), "ddplug": ddplug.__version__, "args": vars(args), "tasks": {}}
    lines = [f"Backbone {args.backbone}; {report['hardware']['threads']} threads on {report['hardware']['processor']}; "
             f"{args.models} models per row (mean ± std); test split{'' if args.limit is None else f' (first {args.limit})'}.", ""]
    backbone = load_backbone(args.backbone)
    for name in args.tasks:
        r = compare(name, args.backbone, models=args.models, limit=args.limit, steps=args.steps, **options)
        save_set(r["set"], RESULTS / f"{args.tag}_{name}.safetensors")
        task = load_task(name)
        cfg = r["options"]
        few = baseline_draws(FewShotDistiller, task, backbone, args.fewshot_models, args.limit, steps=args.fewshot_steps,
                             per_class=cfg["per_class"], seq_len=cfg["seq_len"], eval_size=cfg["eval_size"],
                             head=cfg["head"], pooling=cfg["pooling"])
        rows = [("random real, 1 step (lr tuned on validation)", r["random"]),
                (f"same real examples, {args.fewshot_steps} AdamW steps", few),
                (f"**distilled, 1 step** ({args.steps} outer steps, {r['distill_seconds'] / 60:.1f} min, "
                 f"{r['seconds_per_step']:.2f} s/step, peak {r['peak_memory_mb'] / 1024:.1f} GB)", r["distilled"])]
        entry = {"options": cfg, "distill_seconds": r["distill_seconds"], "seconds_per_step": r["seconds_per_step"],
                 "peak_memory_mb": r["peak_memory_mb"], "val_acc": r["set"].meta["metrics"]["val_acc"],
                 "best_step": r["set"].meta["best_step"], "history": r["set"].meta["history"]}
        for key, ev in (("random", r["random"]), ("fewshot", few), ("distilled", r["distilled"])):
            entry[key] = {"summary": ev.summary()[name], "runs": ev.runs}
        if not args.skip_full:
            full = finetune_full(task, backbone, max_train=args.full_max_train, seq_len=cfg["seq_len"], limit=args.limit, progress=True)
            entry["full"] = full
        report["tasks"][name] = entry
        lines += [f"### {name}", "", results_table(rows)]
        if "full" in entry:
            f = entry["full"]
            lines.append(f"| full fine-tuning, 1 epoch on {f['train_sentences']:,} sentences ({f['train_seconds'] / 60:.1f} min), one model | "
                         f"| | {f['acc']:.3f} | {f['loss']:.3f} | {f['train_sentences']:,} |")
            ratio = entry["distilled"]["summary"]["acc"][0] / f["acc"]
            lines += ["", f"Distilled / full fine-tuning accuracy: {ratio:.3f}."]
        lines.append("")
        (RESULTS / f"{args.tag}.json").write_text(json.dumps(report, indent=1, default=str))
        (RESULTS / f"{args.tag}.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
