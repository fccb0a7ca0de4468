"""Merge benchmark: every merger on AG News + SST-2 distilled sets, next to the single-task sets and random real
examples of the same size, evaluated with fresh models on the full test splits (and on joint test pairs).

Writes benchmarks/results/merge.json (hardware, options, every model's metrics) and benchmarks/results/merge.md.
The single-task sets are read from benchmarks/results/distill_<task>.safetensors (written by benchmarks/distill.py,
`make bench`) or distilled here with the same defaults when missing. Example:

    python benchmarks/merge.py --models 20 --steps 100
"""
import argparse
import json
import time
from pathlib import Path

import ddplug
from ddplug.baselines import RandomRealDistiller
from ddplug.demo import hardware, peak_memory_mb
from ddplug.distill import AttentionDistiller
from ddplug.distilled import load_set, save_set
from ddplug.evaluate import evaluate_set
from ddplug.merge import merge_sets
from ddplug.models import load_backbone
from ddplug.tasks import joint_task, load_task

RESULTS = Path(__file__).parent / "results"
A, B = "ag_news", "sst2"
JOINT = f"{A}*{B}"


def single_sets(backbone, tasks, steps):
    "The single-task distilled sets: those `make bench` wrote, or new ones with the distiller's defaults."
    sets = {}
    for name in (A, B):
        path = RESULTS / f"distill_{name}.safetensors"
        if path.exists():
            sets[name] = load_set(path, backbone)
        else:
            sets[name] = AttentionDistiller(steps=steps).distill(tasks[name], backbone)
            save_set(sets[name], path)
    return sets


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--models", type=int, default=20, help="fresh models per row (mean ± std)")
    p.add_argument("--steps", type=int, default=100, help="outer steps of the learned and joint mergers")
    p.add_argument("--distill-steps", type=int, default=300, help="outer steps when a single-task set must be distilled")
    p.add_argument("--limit", type=int, default=None, help="test sentences (and joint test pairs) per task (default: all)")
    p.add_argument("--joint-limit", type=int, default=2000, help="joint test pairs (default: the first 2,000 of 7,600)")
    p.add_argument("--only", nargs="*", help="run only these rows (names as in the table), keeping the other rows of merge.json")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    backbone = load_backbone(args.backbone)
    tasks = {A: load_task(A), B: load_task(B)}
    tasks[JOINT] = joint_task(tasks[A], tasks[B])
    singles = single_sets(backbone, tasks, args.distill_steps)
    shared = {k: singles[A].meta[k] for k in ("pooling", "inner", "head")}
    randoms = {name: RandomRealDistiller(per_class=1, seq_len=64, **shared).distill(tasks[name], backbone) for name in (A, B)}
    pair = [singles[A], singles[B]]
    learn_opts = {"steps": args.steps}
    rows = [  # (row name, how to make the set)
        ("single-task distilled sets", None),
        ("random real, batch merge", lambda: merge_sets([randoms[A], randoms[B]], "batch", backbone)),
        ("batch", lambda: merge_sets(pair, "batch", backbone)),
        ("text", lambda: merge_sets(pair, "text", backbone)),
        ("learned (batch layout)", lambda: merge_sets(pair, "learned", backbone, tasks, progress=True, **learn_opts)),
        ("joint (batch layout)", lambda: merge_sets(pair, "joint", backbone, tasks, progress=True, **learn_opts)),
        ("random real, sequence merge", lambda: merge_sets([randoms[A], randoms[B]], "sequence", backbone)),
        ("sequence", lambda: merge_sets(pair, "sequence", backbone)),
        ("learned (sequence layout)", lambda: merge_sets(pair, "learned", backbone, tasks, progress=True, layout="sequence", **learn_opts)),
        ("joint (sequence layout)", lambda: merge_sets(pair, "joint", backbone, tasks, progress=True, layout="sequence", **learn_opts)),
    ]
    report = {"hardware": hardware(), "ddplug": ddplug.__version__, "args": vars(args), "rows": {}}
    if args.only and (RESULTS / "merge.json").exists():
        report["rows"] = json.loads((RESULTS / "merge.json").read_text())["rows"]
    evaluate = lambda dset: evaluate_set(dset, tasks, backbone, models=args.models, progress=True,
                                         limit=args.joint_limit if dset.tasks == [JOINT] else args.limit)
    for name, make in rows:
        if args.only and name not in args.only:
            continue
        t0 = time.time()
        if make is None:
            evs = {t: evaluate(singles[t]) for t in (A, B)}
            report["rows"][name] = {"summary": {t: evs[t].summary()[t] for t in (A, B)},
                                    "tables": [evs[t].table(training_loss=True) for t in (A, B)],
                                    "runs": {t: evs[t].runs for t in (A, B)}, "sizes": {t: singles[t].size for t in (A, B)}}
        else:
            dset = make()
            seconds = time.time() - t0
            ev = evaluate(dset)
            report["rows"][name] = {"summary": ev.summary(), "overall": ev.overall(), "tables": [ev.table(training_loss=True)],
                                    "runs": ev.runs, "merge_seconds": round(seconds, 1), "size": dset.size, "tasks": dset.tasks,
                                    "lrs": dset.lrs.tolist(), "weights": None if dset.weights is None else dset.weights.tolist(),
                                    "history": dset.meta.get("history")}
        report["rows"][name]["peak_memory_mb"] = peak_memory_mb()
        report["rows"] = {n: report["rows"][n] for n, _ in rows if n in report["rows"]}  # in table order
        print(f"{name}: {json.dumps(report['rows'][name]['summary'], default=str)[:400]}", flush=True)
        (RESULTS / "merge.json").write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / "merge.md").write_text(markdown(report))
    print(markdown(report))


def markdown(report) -> str:
    "The two summary tables (multi-task, joint task) and every row's full table."
    rows, a = report["rows"], report["args"]
    fmt = lambda ms: f"{ms[0]:.3f} ± {ms[1]:.3f}"
    single = rows.get("single-task distilled sets", {}).get("summary", {})
    ref = {t: single[t]["acc"][0] for t in single}
    hw = report["hardware"]
    limit = "" if a["limit"] is None else f", first {a['limit']} of each"
    out = [f"Backbone {a['backbone']}, encoder frozen (the sets' inner step moves the heads only); {a['models']} fresh models "
           f"per row (mean ± std); AG News test (7,600), SST-2 GLUE dev (872){limit}, and the first {a['joint_limit']:,} of the "
           f"7,600 joint test pairs; "
           f"{hw['threads']} threads on {hw['processor']}, no GPU. Learned and joint mergers: {a['steps']} outer steps.", "",
           "### Multi-task (one head per task)", "",
           "| Set | AG News acc. | SST-2 acc. | AG News kept | SST-2 kept | Training loss (start → end) | Overall eval loss | Merge time |",
           "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        s = r["summary"]
        if A not in s or B not in s:
            continue
        kept = {t: s[t]["acc"][0] / ref[t] if ref.get(t) else float("nan") for t in (A, B)}
        train = f"{s[A]['train_loss_start'][0]:.3f} → {s[A]['train_loss_end'][0]:.3f}" if "train_loss_start" in s[A] and name != "single-task distilled sets" else ""
        overall = fmt(r["overall"]["loss"]) if "overall" in r else ""
        secs = f"{r['merge_seconds'] / 60:.1f} min" if "merge_seconds" in r else ""
        out.append(f"| {name} | {fmt(s[A]['acc'])} | {fmt(s[B]['acc'])} | {kept[A]:.0%} | {kept[B]:.0%} | {train} | {overall} | {secs} |")
    product = ref.get(A, float("nan")) * ref.get(B, float("nan"))
    out += ["", f"### Joint task (8 classes, AG News × SST-2 test pairs; chance 0.125; product of the single-task accuracies {product:.3f})", "",
            "| Set | Joint acc. | Macro-F1 | % of product | Training loss (start → end) | Merge time |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        s = r["summary"].get(JOINT)
        if s is None:
            continue
        train = f"{s['train_loss_start'][0]:.3f} → {s['train_loss_end'][0]:.3f}" if "train_loss_start" in s else ""
        out.append(f"| {name} | {fmt(s['acc'])} | {fmt(s['f1'])} | {s['acc'][0] / product:.0%} | {train} | {r['merge_seconds'] / 60:.1f} min |")
    out += ["", "### Every row in full", ""]
    for name, r in rows.items():
        out += [f"**{name}**", ""] + [t + "\n" for t in r["tables"]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
