"""Computing the next items in a background thread while the current one is used.

The training loop uses it to distort the next batches of digits
(:mod:`nnscratch.core.augment`) while the current batch trains: the two kinds
of work then share the machine's two cores instead of taking turns.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor


def prefetch(work, items, ahead: int = 2):
    """``work(item)`` for each of ``items``, in order, computed ``ahead`` items early in a background thread.

    While the training loop runs batch k on one core, a single worker thread
    distorts batches k+1..k+ahead on the other (NumPy lets go of Python's
    lock inside its array loops, so the two really run at once). One worker
    runs the items one after the other, in order, so a ``work`` that draws
    from a generator it alone uses draws exactly what the plain loop
    ``[work(item) for item in items]`` would: same seed, same batches.

    Typical use, with a generator kept only for augmentation::

        batches = [order[i:i + size] for i in range(0, n, size)]
        distorted = prefetch(lambda rows: augmenter(images[rows], augment_rng), batches)
        for rows, batch in zip(batches, distorted):
            ...train on batch and labels[rows]...

    Stopping early (``break``, an exception) cancels the items not started
    and waits for the one running, so the generator is never used by two
    threads at once. ``ahead=0`` computes each item in line, when asked for,
    with no thread: the same results, and the better choice when the
    machine has no idle core (two threads of one process then mostly wait
    for each other, for Python's lock).
    """
    if ahead <= 0:
        yield from map(work, items)
        return
    items = iter(items)
    pending = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnscratch-prefetch") as worker:
        try:
            for item in items:
                pending.append(worker.submit(work, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
