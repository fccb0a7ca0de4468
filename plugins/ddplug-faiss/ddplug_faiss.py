"""ddplug plugin: reconstructor `faiss`, the cosine nearest token by an exact faiss inner-product index.

It returns the same tokens as ddplug's built-in `torch` reconstructor: both search the L2-normalised rows of the
backbone's word-embedding matrix exhaustively. faiss is imported only when the reconstructor is created, so listing
plugins stays fast.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from ddplug.plugins import hookimpl
from ddplug.reconstruct import NearestToken

__version__ = "0.1.0"

# faiss decides per search whether to compute inner products through BLAS, comparing the batch against
# `faiss.cvar.distance_compute_blas_threshold` (128,000 by default in faiss-cpu 1.15). With the default, a batch of a
# few hundred queries over the 30,522 x 384 minilm vocabulary takes the slow path (256 queries: ~1.2 s instead of
# ~65 ms on 2 cores; from ~512 queries on, both are equally fast). A reconstruction searches a few hundred to a few
# thousand positions, so the threshold is lowered during the search and restored afterwards.
# benchmarks/reconstruct.py measures it.
BLAS_THRESHOLD = 1

@contextmanager
def faiss_settings(faiss, blas_threshold: int | None, threads: int | None):
    "Set faiss's BLAS threshold and OpenMP threads inside the block (None leaves one alone); restore both afterwards."
    old = faiss.cvar.distance_compute_blas_threshold, faiss.omp_get_max_threads()
    if blas_threshold is not None:
        faiss.cvar.distance_compute_blas_threshold = blas_threshold
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = old[0]
        faiss.omp_set_num_threads(old[1])

class FaissReconstructor(NearestToken):
    "Nearest tokens by cosine from an exact inner-product index (`IndexFlatIP`) over the unit-norm vocabulary."

    def __init__(self, faiss, blas_threshold: int | None = BLAS_THRESHOLD, threads: int | None = None):
        self.faiss, self.blas_threshold, self.threads = faiss, blas_threshold, threads

    def index(self, table: torch.Tensor):
        table = table.cpu().contiguous().numpy()
        index = self.faiss.IndexFlatIP(table.shape[1])
        index.add(table)
        return index

    def search(self, index, queries: torch.Tensor, top_k: int):
        with faiss_settings(self.faiss, self.blas_threshold, self.threads):
            cos, ids = index.search(queries.cpu().contiguous().numpy(), top_k)
        return torch.from_numpy(ids), torch.from_numpy(cos)

def make_faiss(blas_threshold: int | None = BLAS_THRESHOLD, threads: int | None = None) -> FaissReconstructor:
    """The `faiss` reconstructor. `blas_threshold=None` keeps faiss's own threshold (slower for small batches);
    `threads` caps faiss's OpenMP threads during a search (None: faiss's default, one per core). On a machine whose
    cores are busy with other work, `threads=1` avoids the stalls of threads waiting on each other."""
    try:
        import faiss
    except ImportError:
        from ddplug.core import DDPlugError
        raise DDPlugError("reconstructor 'faiss' needs the faiss-cpu package: pip install faiss-cpu, "
                          "or use --reconstructor torch.") from None
    return FaissReconstructor(faiss, blas_threshold, threads)

@hookimpl
def register_reconstructors(register):
    register("faiss", make_faiss, description="cosine nearest token from an exact faiss inner-product index")
