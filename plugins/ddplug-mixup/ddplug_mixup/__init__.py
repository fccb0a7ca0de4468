"""ddplug plugin: merger `mixup`, the batch merge plus mixup examples interpolated across tasks.

A part of a distilled set belongs to one task and trains one head, so a mixed example is stored twice. For every
pair of tasks (a, b) and each of `count` mixes, draw an example i of a, an example j of b and λ ~ Beta(alpha, alpha);
the mixed input

    x = λ · x_a[i] + (1 − λ) · x_b[j]

goes into part a with label target λ · y_a[i] and into part b with label target (1 − λ) · y_b[j]. The label targets
are not renormalised: the inner loss is a soft cross-entropy, linear in the target, so the two copies together add
λ · CE_a(x, y_a) + (1 − λ) · CE_b(x, y_b) to the inner loss, mixup's loss routed to both heads.

Parts may differ in length: the partner example is cut, or padded with zero vectors that are masked out, to the length
of the part it goes into. Position by position, a mixed example is attended where either source is attended
(position 0 is both sources' `[CLS]` slot). Attention labels are mixed with the same λ when both parts have them for
the same layers and in the same form ([CLS] row or every row), each row renormalised to sum to 1; otherwise the copy
keeps the attention labels of its own part's example. The attention term is not scaled by λ.

The original examples are kept as they are (the `batch` merge) and weigh in the inner loss exactly as in the batch
merge: the set gets per-part weights `w_t = (N_t + M_t) / N` (N_t original and M_t mixed examples in part t, N original
examples in all), so the inner loss is the sum over every example, mixed ones included, divided by N. The mixed
examples add to the batch merge's loss instead of diluting it: each mixed input adds
(λ · CE_a + (1 − λ) · CE_b) / N, one example's worth. One learning rate per step is the mean of the sources' rates.

Which examples are mixed: a's examples in a random order, each used once before any is used again, and b's likewise;
λ ~ Beta(alpha, alpha). All draws come from `numpy.random.default_rng(seed)`, so a merge is reproducible, and every
draw is recorded in `meta["mixup"]["mixes"]` (`tasks`, `examples`, `lam`), in the order the mixed examples follow the
original ones in each part.

Options: `alpha` (1.0: λ uniform on (0, 1); smaller keeps λ near 0 or 1, larger near 1/2), `count` (4 mixed examples
per pair of tasks, each stored in both parts), `seed` (0).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ddplug.core import DDPlugError
from ddplug.distilled import DistilledSet, Part
from ddplug.merge import attention_compatible, check_sources, mean_lrs, merged_meta
from ddplug.plugins import hookimpl

__version__ = "0.1.0"

def fit(x: torch.Tensor, length: int, dims=(1,)) -> torch.Tensor:
    "Cut `x` to `length`, or pad it with zeros to `length`, along each of `dims`."
    for d in dims:
        x = x.narrow(d, 0, min(length, x.shape[d]))
        pad = [0, 0] * (x.dim() - 1 - d) + [0, length - x.shape[d]]
        x = F.pad(x, pad)
    return x

def mix_into(own: Part, i: torch.Tensor, other: Part, j: torch.Tensor, lam: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tensors of the mixed examples `lam · own[i] + (1 − lam) · other[j]` as examples of `own`'s part: at its
    length, with label targets `lam · own.labels[i]`. `i`, `j` and `lam` are 1-D, one entry per mixed example."""
    length, w = own.seq_len, lam.view(-1, 1, 1)
    out = {"inputs_embeds": w * own.inputs_embeds[i] + (1 - w) * fit(other.inputs_embeds[j], length),
           "attention_mask": torch.maximum(own.attention_mask[i], fit(other.attention_mask[j], length)),
           "labels": lam.view(-1, 1) * own.labels[i]}
    if own.attention_labels is not None:
        att = own.attention_labels[i]
        if attention_compatible(own, other):
            keys = (3,) if att.dim() == 4 else (3, 4)  # the [CLS] row's keys, or every row and its keys
            w = lam.view(-1, *[1] * (att.dim() - 1))
            att = w * att + (1 - w) * fit(other.attention_labels[j], length, keys)
            att = att / att.sum(-1, keepdim=True).clamp_min(1e-12)
        out["attention_labels"] = att
    return out

def _append(part: Part, extra: list[dict]) -> Part:
    "`part` with the mixed examples in `extra` added after its own examples."
    cat = lambda k: torch.cat([part.tensors()[k], *(e[k] for e in extra)]) if k in part.tensors() else None
    return Part(part.task, part.label_names, cat("inputs_embeds"), cat("labels"), cat("attention_mask"),
                cat("attention_labels"), part.attention_layers)

class MixupMerger:
    """The batch merge plus `count` mixup examples per pair of tasks, λ ~ Beta(alpha, alpha), drawn with `seed`;
    each mixed input goes to both tasks' parts with label targets λ·y_a and (1 − λ)·y_b, and the inner loss is the
    sum over all examples divided by the number of original ones (see the module docstring)."""
    name = "mixup"

    def __init__(self, alpha: float = 1.0, count: int = 4, seed: int = 0):
        if not alpha > 0:
            raise DDPlugError(f"mixup alpha must be positive, got {alpha}: use e.g. --option alpha=1.")
        if not (isinstance(count, int) and count >= 0):
            raise DDPlugError(f"mixup count must be a whole number of examples, 0 or more, got {count!r}.")
        self.alpha, self.count, self.seed = float(alpha), count, int(seed)

    def merge(self, sets: list[DistilledSet], backbone=None, tasks=None, progress: bool = False) -> DistilledSet:
        check_sources(sets, backbone)  # one backbone, no task twice, at least two sets, the same inner step
        parts = [p for s in sets for p in s.detach().parts]
        rng = np.random.default_rng(self.seed)
        def draw(n):  # `count` indices into n examples: shuffled rounds, so every example is used before any repeats
            rounds = max(1, -(-self.count // n))
            return torch.from_numpy(np.concatenate([rng.permutation(n) for _ in range(rounds)])[:self.count])
        extra, mixes = {p.task: [] for p in parts}, []
        for ia, a in enumerate(parts):
            for b in parts[ia + 1:]:
                i, j = draw(a.size), draw(b.size)
                lam = torch.from_numpy(rng.beta(self.alpha, self.alpha, size=self.count)).float()
                extra[a.task].append(mix_into(a, i, b, j, lam))
                extra[b.task].append(mix_into(b, j, a, i, 1 - lam))
                mixes += [{"tasks": [a.task, b.task], "examples": [int(x), int(y)], "lam": float(l)}
                          for x, y, l in zip(i, j, lam)]
        merged = [_append(p, extra[p.task]) for p in parts]
        meta = merged_meta(sets, self.name, merged, mixup={"alpha": self.alpha, "count": self.count,
                                                           "seed": self.seed, "mixes": mixes})
        # weights (N_t + M_t) / N: the inner loss is the sum over all examples / N, so the originals weigh as in `batch`
        weights = torch.tensor([p.size for p in merged], dtype=torch.float) / sum(p.size for p in parts)
        return DistilledSet(merged, mean_lrs(sets), meta, weights)

@hookimpl
def register_mergers(register):
    register("mixup", MixupMerger, description="batch merge + mixup examples across tasks, labels routed to both heads")
