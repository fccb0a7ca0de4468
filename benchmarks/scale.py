"""Scaling benchmark: outer steps per second of AG News distillation on minilm with 1 and 2 processes (torchrun, gloo),
peak memory per process, and fp32 vs bf16 autocast (speed and the distilled set's accuracy).

Writes benchmarks/results/scale.json (hardware, versions, options, every run) and benchmarks/results/scale.md (the
tables). Each configuration runs in its own `torchrun` job (this script again, with --worker). Example:

    python benchmarks/scale.py --steps 20
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def worker(args):
    "One distillation under torchrun; rank 0 writes what it measured to --out."
    import torch
    from ddplug import parallel
    from ddplug.distill import AttentionDistiller
    from ddplug.models import load_backbone
    from ddplug.tasks import load_task
    parallel.init_from_env("cpu")
    task, backbone = load_task(args.task), load_backbone(args.backbone)
    distiller = AttentionDistiller(steps=args.steps, batch_size=args.batch_size, eval_every=0, eval_size=args.eval_size,
                                   precision=args.precision)
    dset = distiller.distill(task, backbone, progress=False, device="cpu")
    result = {"processes": parallel.world_size(), "batch_per_process": args.batch_size,
              "global_batch": args.batch_size * parallel.world_size(), "precision": args.precision,
              "threads_per_process": torch.get_num_threads(), "steps": args.steps,
              "seconds_per_outer_step": dset.meta["seconds_per_outer_step"], "val_acc": dset.meta["metrics"]["val_acc"]}
    if args.models:
        ev = parallel.parallel_evaluate(dset, task, backbone, models=args.models, limit=args.limit)
        result["test"] = {"models": args.models, "limit": args.limit, "acc": ev.summary()[task.name]["acc"]}
    # ru_maxrss is in KiB on Linux: each process's own peak resident memory
    result["peak_rss_mb"] = parallel.gather(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    if parallel.is_main():
        Path(args.out).write_text(json.dumps(result))
    parallel.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, processes: int, batch_size: int, precision: str, models: int, threads: int | None = None) -> dict:
    "One torchrun job; `threads` sets OMP_NUM_THREADS (torchrun itself sets 1 per process when there are several)."
    out = Path(tempfile.mkdtemp()) / "run.json"
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", __file__, "--worker", "--out", str(out), "--task", args.task,
           "--backbone", args.backbone, "--steps", str(args.steps), "--batch-size", str(batch_size),
           "--precision", precision, "--eval-size", str(args.eval_size), "--models", str(models), "--limit", str(args.limit)]
    t0, load = time.time(), os.getloadavg()[0]
    subprocess.run(cmd, check=True, env=env)
    result = json.loads(out.read_text())
    result["load_average_at_start"] = load
    result["job_seconds"] = round(time.time() - t0, 1)  # start-up, model loading, validation and evaluation included
    print(json.dumps(result), flush=True)
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="ag_news")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--steps", type=int, default=20, help="outer steps per run")
    p.add_argument("--batch-size", type=int, default=32, help="global real batch of the 1-process baseline")
    p.add_argument("--eval-size", type=int, default=200, help="validation sentences (checked once, at the end)")
    p.add_argument("--models", type=int, default=5, help="fresh models for the precision comparison's test accuracy")
    p.add_argument("--limit", type=int, default=1000, help="test sentences for the precision comparison")
    p.add_argument("--skip-bf16", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)

    import ddplug
    from ddplug.demo import hardware
    RESULTS.mkdir(parents=True, exist_ok=True)
    B = args.batch_size
    load_start = os.getloadavg()[0]  # other work on the machine slows every number below
    # the precision pair runs with 1 thread: 2 OpenMP threads next to other jobs on 2 cores vary far more
    runs = {"1 process": launch(args, 1, B, "fp32", 0),
            "1 process, 1 thread": launch(args, 1, B, "fp32", args.models, threads=1),
            "2 processes, same global batch": launch(args, 2, B // 2, "fp32", 0),
            "2 processes, same batch per process": launch(args, 2, B, "fp32", 0)}
    if not args.skip_bf16:
        runs["1 process, 1 thread, bf16"] = launch(args, 1, B, "bf16", args.models, threads=1)
    hw = hardware()
    report = {"hardware": {**hw, "cpu_cores": os.cpu_count(), "gpu": None, "load_average_at_start": load_start,
                           "load_average_at_end": os.getloadavg()[0]},
              "ddplug": ddplug.__version__, "args": vars(args), "runs": runs}
    base = runs["1 process"]["seconds_per_outer_step"]
    lines = [f"{args.backbone} on {args.task}, {args.steps} outer steps per run, defaults otherwise; "
             f"{os.cpu_count()}-core CPU ({hw['processor']}), no GPU; torch {hw['torch']}, gloo backend. "
             f"Load average from other work on the machine: {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.",
             "", "| run | processes | threads / process | batch / process | global batch | s / outer step | outer steps / s | "
             "speed-up | real rows / s | peak RSS / process (MB) | load avg. at start |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        if r["precision"] != "fp32":
            continue
        s = r["seconds_per_outer_step"]
        lines.append(f"| {name} | {r['processes']} | {r['threads_per_process']} | {r['batch_per_process']} | {r['global_batch']} | "
                     f"{s:.2f} | {1 / s:.2f} | {base / s:.2f}x | {r['global_batch'] / s:.0f} | "
                     f"{', '.join(str(m) for m in r['peak_rss_mb'])} | {r['load_average_at_start']:.1f} |")
    lines += ["", "s / outer step is the mean over the run's outer steps, the first included (no start-up, no "
              "validation); speed-up is against the first row. A 1-process run uses both cores (2 threads) unless "
              "told otherwise; torchrun gives each of 2 processes 1 thread. Other jobs shared the 2 cores (load "
              "column), so differences of less than about 2x are within the noise of this machine."]
    if "1 process, 1 thread, bf16" in runs:
        lines += ["", f"Precision, 1 process (1 thread), batch {B}, {args.steps} outer steps; test accuracy of {args.models} fresh "
                  f"models on the first {args.limit} test sentences (mean ± std):", "",
                  "| precision | s / outer step | best val acc | test acc | peak RSS (MB) |", "|---|---|---|---|---|"]
        for name in ("1 process, 1 thread", "1 process, 1 thread, bf16"):
            r = runs[name]
            acc = r["test"]["acc"]
            lines.append(f"| {r['precision']} | {r['seconds_per_outer_step']:.2f} | {r['val_acc']:.3f} | "
                         f"{acc[0]:.3f} ± {acc[1]:.3f} | {r['peak_rss_mb'][0]} |")
        slow = runs["1 process, 1 thread, bf16"]["seconds_per_outer_step"] / runs["1 process, 1 thread"]["seconds_per_outer_step"]
        lines += ["", f"bf16 is `torch.autocast(bfloat16)` around the outer step's forward passes. On this CPU (AVX2, "
                  f"no AVX-512-BF16 or AMX) it took {slow:.1f}x the time of fp32, so fp32 stays the default; bf16 is "
                  "meant for GPUs with bf16 tensor cores, where it has not been measured here (no GPU)."]
    (RESULTS / "scale.json").write_text(json.dumps(report, indent=1))
    (RESULTS / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
