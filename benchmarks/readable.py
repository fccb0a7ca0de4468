"""Readable distillation: accuracy of the distilled set and of its nearest-token text, over the token penalty ρ.

    python benchmarks/readable.py --task ag_news --penalties 0 10 --projection --prototype --selected --steps 150

Variants: a token penalty ρ per value of --penalties; --projection (train through the nearest tokens); --prototype
(the same, starting from each class's most typical training sentence); --selected (the same, starting from the
training sentences that teach best in one step). --keep keeps the rows of an earlier run whose variants are not
rerun.

For each ρ: distil on minilm, read the set back as text (torch nearest token, cleaned), measure readability
(mean cosine of positions to their tokens, BLEU / chrF against the nearest real training sentence) and train fresh
models on both the set and its text. Writes benchmarks/results/readable_<task>.json and .md.
"""
import argparse
import json
import time
from pathlib import Path

from ddplug.demo import hardware
from ddplug.distill import AttentionDistiller
from ddplug.evaluate import evaluate_set
from ddplug.models import load_backbone
from ddplug.reconstruct import quality, reconstruct_set, text_set
from ddplug.tasks import load_task

RESULTS = Path(__file__).parent / "results"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="ag_news")
    p.add_argument("--penalties", type=float, nargs="*", default=[0.0, 0.3, 3.0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--projection", action="store_true", help="also distil with token_projection (straight-through)")
    p.add_argument("--prototype", action="store_true", help="also distil with token_projection from prototype sentences")
    p.add_argument("--selected", action="store_true", help="also distil with token_projection from selected sentences")
    p.add_argument("--keep", action="store_true", help="keep earlier rows of variants not run now")
    args = p.parse_args()
    backbone, task = load_backbone("minilm"), load_task(args.task)
    report = {"hardware": hardware(), "args": vars(args), "runs": []}
    variants = [(f"{rho:g}", {"token_penalty": rho}) for rho in args.penalties]
    if args.projection:
        variants.append(("projection", {"token_projection": True}))
    if args.prototype:
        variants.append(("prototype + projection", {"token_projection": True, "init": "prototype"}))
    if args.selected:
        variants.append(("selected + projection", {"token_projection": True, "init": "selected"}))
    path = RESULTS / f"readable_{args.task}.json"
    if args.keep and path.exists():
        report["runs"] = [r for r in json.loads(path.read_text())["runs"] if r["variant"] not in dict(variants)]
    row = lambda r: (f"| {r['variant']} | {r['acc_set'][0]:.3f} ± {r['acc_set'][1]:.3f} | {r['acc_text'][0]:.3f} ± "
                     f"{r['acc_text'][1]:.3f} | {r['mean_cosine']:.3f} | {r['bleu']:.1f} | {r['chrf']:.1f} |")
    for name, option in variants:
        t0 = time.time()
        dset = AttentionDistiller(steps=args.steps, **option).distill(task, backbone, progress=False)
        recs = reconstruct_set(dset, backbone)
        q = quality(dset, recs, backbone)[0]
        acc_set = evaluate_set(dset, task, backbone, models=args.models, limit=args.limit).summary()[task.name]["acc"]
        acc_text = evaluate_set(text_set(dset, recs, backbone), task, backbone, models=args.models,
                                limit=args.limit).summary()[task.name]["acc"]
        run = {"variant": name, **option, "acc_set": acc_set, "acc_text": acc_text, "mean_cosine": q["mean_cosine"],
               "bleu": q["bleu"], "chrf": q["chrf"], "texts": recs[0].texts, "classes": recs[0].classes,
               "seconds": round(time.time() - t0)}
        report["runs"].append(run)
        rows = [row(r) for r in report["runs"]]
        print(rows[-1], flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"readable_{args.task}.json").write_text(json.dumps(report, indent=1))
        header = [f"{args.task} on minilm, {args.steps} outer steps per variant; {args.models} models on the first {args.limit} "
                  f"test sentences; 2-core CPU, no GPU.", "",
                  "| token penalty ρ (or projection) | distilled set acc. | its text acc. | mean cosine to tokens | BLEU | chrF |",
                  "|---|---|---|---|---|---|"]
        examples = ["", f"Reconstructed text of the last row ({name}):", ""] + [f"- {c}: {t}" for c, t in zip(run["classes"], run["texts"])]
        (RESULTS / f"readable_{args.task}.md").write_text("\n".join(header + rows + examples) + "\n")


if __name__ == "__main__":
    main()
