"""Sharing a batch between the cores: threads over parts of the samples, BLAS on one thread.

Conv2D and MaxPool2D split a batch into one contiguous part per core and run
the parts at once (Conv2D each part in chunks of a few samples that fit in
the cache, :data:`CHUNK_BYTES`). NumPy lets go of Python's lock inside its products and
copies, so the threads really run side by side. Why not BLAS's own threads:
docs/cnn.md.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


WORKERS = min(2, _cores())  # threads that share a batch's samples (measured on 2 cores only);
# 0 leaves the sharing to BLAS's own threads, only to measure what the workers buy (bench/cnn.py)
CHUNK_BYTES = 2 << 20  # the column rows made and used at once, while they are in the cache
PARALLEL_BYTES = 256 << 10  # a batch of fewer bytes (of columns, of pixels) stays in one thread
_pool: ThreadPoolExecutor | None = None
_blas = None
_sharing = threading.local()  # .busy: this thread already runs one part of a shared piece of work


def _forget_pool() -> None:
    """A forked child has none of its parent's threads: it starts its own pool when needed."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def in_parallel(work, n: int, bytes_per_sample: int) -> list:
    """``work(samples)`` on ``WORKERS`` contiguous parts of ``range(n)`` at once; their results.

    ``bytes_per_sample`` measures the work: the bytes one sample makes the
    work read or write (its columns, its pixels).

    Each part runs on its own core with BLAS on one thread: NumPy lets go of
    Python's lock in products and copies, so two threads really run at once,
    and the copies and additions around the products are shared out too, not
    only the products. BLAS's own threads share only the products, and on a
    busy machine they spin waiting for each other, several times slower
    (docs/cnn.md). So BLAS stays on one thread here even when the work is too
    small to share (less than :data:`PARALLEL_BYTES`: handing it over costs a
    fraction of a millisecond).
    """
    global _pool, _blas
    if WORKERS == 0 or getattr(_sharing, "busy", False):
        # Already one part of shared work (a layer inside a split batch): the other core has its own part.
        return [work(slice(0, n))]
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()  # finds the BLAS libraries once (about 1 ms)
    with _blas.limit(limits=1, user_api="blas"):
        if WORKERS == 1 or n < WORKERS or n * bytes_per_sample < PARALLEL_BYTES:
            return [work(slice(0, n))]
        if _pool is None or _pool._max_workers != WORKERS - 1:
            _pool = ThreadPoolExecutor(WORKERS - 1, "nnscratch-parallel")
        parts = [slice(n * i // WORKERS, n * (i + 1) // WORKERS) for i in range(WORKERS)]
        others = [_pool.submit(one_part, work, part) for part in parts[1:]]
        return [one_part(work, parts[0])] + [job.result() for job in others]


def one_part(work, *args):
    """``work(*args)`` as one part of shared work: whatever it would share further stays in this thread.

    (Two parts each handing half of their work to the other core would only
    make four pieces fight over two cores, or wait on each other.)
    """
    _sharing.busy = True
    try:
        return work(*args)
    finally:
        _sharing.busy = False


def chunks(samples: slice, size: int):
    """``samples`` cut into slices of at most ``size`` samples."""
    return (slice(i, min(i + size, samples.stop)) for i in range(samples.start, samples.stop, size))
