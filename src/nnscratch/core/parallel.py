"""Sharing work between the cores: threads over parts of the samples, BLAS on one thread.

Work is shared this way in three places: the full-batch and mini-batch steps
(core/fast.py: each part runs a replica of the network), the convolution and
pooling layers (each part takes some samples of the batch, in chunks that fit
in the cache, :data:`CHUNK_BYTES`), and the compiled loops (Adam's weights,
the distortions' digits). NumPy and the compiled loops let go of Python's
lock, so the threads really run side by side.

**The same sums on any machine.** The work is always cut into :data:`PARTS`
contiguous parts, whatever the number of cores, so the parts' results are
added in the same order everywhere and a seed gives the same weights on one
core or eight. The parts run at once on as many cores as there are (at most
:data:`PARTS`), else one after the other.

**No sharing within a part** (:func:`one_part`): a layer inside a part of a
split batch keeps its work in its thread; the other core is busy with the
other part. Why not BLAS's own threads: docs/cnn.md.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


PARTS = 2  # work is cut into this many parts, whatever the machine (measured on 2 cores)
WORKERS = min(PARTS, cores())  # threads that run the parts at once; 0 leaves the
# sharing to BLAS's own threads, only to measure what the parts buy (bench/cnn.py)
CHUNK_BYTES = 2 << 20  # the column rows made and used at once, while they are in the cache
PARALLEL_BYTES = 256 << 10  # a batch of fewer bytes (of columns, of pixels) stays in one piece
_pool: ThreadPoolExecutor | None = None
_controller = None
_sharing = threading.local()  # .busy: this thread already runs one part of a shared piece of work


def _forget_pool() -> None:
    """A forked child has none of its parent's threads: it starts its own pool when needed."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def blas_threads(threads: int | None):
    """A context in which BLAS (NumPy's matrix products) uses ``threads`` threads (None: as it is)."""
    global _controller
    if threads is None:
        return nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()  # finds the BLAS libraries once (about 1 ms)
    return _controller.limit(limits=threads, user_api="blas")


def run_parts(calls: list) -> list:
    """``[function(*args) for function, args in calls]``, at once on up to :data:`WORKERS` cores.

    The first call runs in this thread, the others on the pool (or here,
    one after the other, on one core, or inside a part). Each runs as
    :func:`one_part`.
    """
    if WORKERS < 2 or len(calls) == 1 or getattr(_sharing, "busy", False):
        return [one_part(function, *args) for function, args in calls]
    others = [_the_pool().submit(one_part, function, *args) for function, args in calls[1:]]
    first = one_part(calls[0][0], *calls[0][1])
    return [first] + [job.result() for job in others]


def ahead(function, calls):
    """``function(*args)`` for each ``args`` of ``calls`` in turn, each made on the pool while the one before is used.

    For work that does not wait on the step before it (a mini-batch's
    entries, say): the other core prepares the next result meanwhile. On
    one core, or within a part, simply one after the other.
    """
    if WORKERS < 2 or getattr(_sharing, "busy", False):
        yield from (function(*args) for args in calls)
        return
    pool, calls = _the_pool(), iter(calls)
    first = next(calls, None)
    if first is None:
        return
    job = pool.submit(one_part, function, *first)
    try:
        for args in calls:
            done = job.result()
            job = pool.submit(one_part, function, *args)
            yield done
        yield job.result()
    finally:  # the consumer stopped early (an error, a divergence): the next result is not wanted
        job.cancel()


def _the_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(PARTS - 1, "nnscratch-parallel")
    return _pool


def in_parallel(work, n: int, bytes_per_sample: int) -> list:
    """``work(samples)`` on :data:`PARTS` contiguous parts of ``range(n)``; their results.

    ``bytes_per_sample`` measures the work: the bytes one sample makes the
    work read or write (its columns, its pixels). Less than
    :data:`PARALLEL_BYTES` in all stays in one piece (handing work over
    costs a fraction of a millisecond), and so does work inside a part.

    Each part runs with BLAS on one thread: NumPy lets go of Python's lock
    in products and copies, so two threads really run at once, and the
    copies and additions around the products are shared out too, not only
    the products. BLAS's own threads share only the products, and on a busy
    machine they spin waiting for each other, several times slower
    (docs/cnn.md). So BLAS stays on one thread here even for one piece.
    """
    if WORKERS == 0 or getattr(_sharing, "busy", False):
        return [work(slice(0, n))]
    with blas_threads(1):
        if n < PARTS or n * bytes_per_sample < PARALLEL_BYTES:
            return [work(slice(0, n))]
        parts = [slice(n * i // PARTS, n * (i + 1) // PARTS) for i in range(PARTS)]
        return run_parts([(work, (part,)) for part in parts])


def one_part(work, *args):
    """``work(*args)`` as one part of shared work: whatever it would share further stays in this thread.

    (Two parts each handing half of their work to the other core would only
    make four pieces fight over two cores, or wait on each other.)
    """
    before = getattr(_sharing, "busy", False)
    _sharing.busy = True
    try:
        return work(*args)
    finally:
        _sharing.busy = before


def chunks(samples: slice, size: int):
    """``samples`` cut into slices of at most ``size`` samples."""
    return (slice(i, min(i + size, samples.stop)) for i in range(samples.start, samples.stop, size))
