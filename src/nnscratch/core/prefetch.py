"""The training digits distorted afresh for every epoch, optionally made ahead by a worker process.

Distorting 60000 digits (:mod:`nnscratch.core.augment`) costs about two
thirds of an epoch of a 784-256-128-10 network, so done in line it makes an
epoch about 1.6-1.75 times as long (``bench/augment.py``). A worker process
can make the next epoch's digits while this epoch trains, which pays when a
core is idle. On this project's shared 2-core machine (load average 3-6) it
did not: epochs with the worker took 2.6x as long as plain ones, worse than
in line, and so did a prefetching thread (2.0-2.6x), whose Python lock the
two threads kept waiting for. Hence in line is the default and the worker an
option (``background=True``); measure on your machine with
``python bench/augment.py``.

The worker works a whole epoch at a time (one hand-over per epoch; the
training loop then reads its batches ``distorted[rows]`` as it reads
undistorted ones) and writes into shared memory (two blocks, used in turn),
so only a few bytes travel through the pipe. It is started with "spawn", the
start method every OS has: a script that uses it must guard its top level
with ``if __name__ == "__main__":`` (the worker imports the script).

The worker draws from a copy of the caller's generator state and hands the
new state back, so the results are exactly those of calling
``augmenter(images, rng)`` once per epoch in line: the same seed gives the
same weights, with or without the worker, and a resumed run continues the
same stream.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.shared_memory import SharedMemory

import numpy as np


class DistortedEpochs:
    """The training digits distorted afresh for every epoch, each next set made ahead.

    ``epochs = DistortedEpochs(augmenter, images, rng)``, then
    ``epochs.next()`` once per epoch gives ``augmenter(images, rng)``: the
    same digits, and ``rng`` left in the same state, as computing it in
    line. Give it a generator used for nothing else; between epochs
    ``rng.bit_generator.state`` is what a checkpoint must keep. By default
    each set is computed when asked. With ``background=True`` a worker
    process computes the set for the following epoch while the caller
    trains on this one (it starts at once, so the first set is under way
    while the rest of training is set up); each set is then valid until the
    next-but-one call of ``next()``, which reuses its memory. ``close()``
    (or a ``with`` block) stops the worker.
    """

    def __init__(self, augmenter, images: np.ndarray, rng: np.random.Generator, background: bool = False):
        self.augmenter, self.images, self.rng = augmenter, images, rng
        self._worker = self._pending = None
        self._blocks, self._turn = [], 0
        if background:
            self._blocks = [SharedMemory(create=True, size=max(1, images.nbytes)) for _ in range(2)]
            self._worker = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                               initializer=_start_worker, initargs=(images,))
            self._submit()

    def _submit(self) -> None:
        """Start the next set in the worker, from the generator's present state (left untouched here)."""
        self._pending = self._worker.submit(_distort_into, self._blocks[self._turn].name, self.augmenter.config(),
                                            self.rng.bit_generator.state)

    def next(self) -> np.ndarray:
        """The training digits distorted for the coming epoch, (n, 784), same dtype as ``images``."""
        if self._worker is None:
            return self.augmenter(self.images, self.rng)
        self.rng.bit_generator.state = self._pending.result()  # as if the digits had been drawn here
        block = self._blocks[self._turn]
        self._turn = 1 - self._turn
        self._submit()  # the following epoch's set, into the other block
        return np.ndarray(self.images.shape, self.images.dtype, buffer=block.buf)

    def close(self) -> None:
        """Stop the worker and free the shared memory; a set still being made is dropped."""
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = self._pending = None
        for block in self._blocks:
            try:
                block.close()
            except BufferError:  # the caller still holds a set: its memory goes when that array does
                pass
            block.unlink()
        self._blocks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_IMAGES = None  # in the worker: the training digits, sent once when it starts
_BLOCKS = {}  # in the worker: the shared memory blocks, by name, opened once


def _start_worker(images: np.ndarray) -> None:
    global _IMAGES
    _IMAGES = images


def _distort_into(block_name: str, config: dict, state: dict) -> dict:
    """In the worker: write the digits distorted by ``make_augmenter(**config)`` from generator ``state``
    into the shared block; return the generator's new state."""
    from .augment import make_augmenter

    if block_name not in _BLOCKS:
        _BLOCKS[block_name] = SharedMemory(name=block_name)
    out = np.ndarray(_IMAGES.shape, _IMAGES.dtype, buffer=_BLOCKS[block_name].buf)
    rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
    rng.bit_generator.state = state
    out[...] = make_augmenter(**config)(_IMAGES, rng)
    return rng.bit_generator.state
