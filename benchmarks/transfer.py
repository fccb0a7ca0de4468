"""Transfer benchmark: minilm fine-tuned on AG News, then a new SST-2 head on the frozen adapted vs original encoder.

Writes benchmarks/results/transfer.json (hardware, versions, options, every curve) and benchmarks/results/transfer.md
(the tables). The fine-tuned encoder goes to a temporary folder (or --encoder-dir) and is not kept in the repository.

    python benchmarks/transfer.py
"""
import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import ddplug
from ddplug.demo import hardware
from ddplug.models import load_backbone
from ddplug.tasks import load_task
from ddplug.transfer import transfer, transfer_table

RESULTS = Path(__file__).parent / "results"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="source", default="ag_news")
    p.add_argument("--to", dest="target", default="sst2")
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--finetune-max-train", type=int, default=4000, help="source sentences, one epoch")
    p.add_argument("--epochs", type=int, default=30, help="epochs of the new head")
    p.add_argument("--max-train", type=int, default=4000, help="target training sentences for the head")
    p.add_argument("--target-acc", type=float, default=None, help="default: 95%% of the better final accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder-dir", default=None, help="where to save the fine-tuned encoder (default: a temporary folder)")
    p.add_argument("--tag", default="transfer", help="name of the result files")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    encoder_dir = Path(args.encoder_dir or tempfile.mkdtemp()) / f"{args.backbone}+{args.source}"
    load_start = os.getloadavg()[0]  # other work on the machine slows every number below
    t0 = time.time()
    source, target = load_task(args.source), load_task(args.target)
    backbone = load_backbone(args.backbone)
    result = transfer(source, target, backbone, encoder_dir, finetune_max_train=args.finetune_max_train,
                      epochs=args.epochs, max_train=args.max_train, target_acc=args.target_acc, seed=args.seed,
                      progress=True)
    wall = time.time() - t0
    hw = {**hardware(), "load_average_start": round(load_start, 2), "load_average_end": round(os.getloadavg()[0], 2)}
    report = {"hardware": hw, "ddplug": ddplug.__version__, "args": vars(args), "wall_seconds": round(wall, 1), **result}
    header = (f"Backbone {args.backbone}; fine-tuned on {args.source} ({result['finetune']['train_sentences']:,} sentences, "
              f"1 epoch, AdamW 5e-5, mean pooling); new linear head on {args.target}: AdamW 1e-3 (constant), batches of 32, "
              f"seed {args.seed}. CPU only: {hw['threads']} threads on {hw['processor']}, no GPU; torch {hw['torch']}; "
              f"load average {hw['load_average_start']} at the start, {hw['load_average_end']} at the end. "
              f"Seconds count feature extraction of the head's training sentences plus its epochs; "
              f"whole run {wall / 60:.1f} min.")
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / f"{args.tag}.md").write_text(header + "\n\n" + transfer_table(result) + "\n")
    print(header, transfer_table(result), sep="\n\n", flush=True)


if __name__ == "__main__":
    main()
