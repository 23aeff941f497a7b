"""Compiled kernels: the layers' own math, in fewer passes over memory.

The layers in ``core/`` are the reference: plain NumPy, one product or
ufunc a line, easy to check by hand. At a few hot spots NumPy has to walk
through memory several times (and through every zero of a mostly blank
digit) where one loop would walk once; those loops live in this package,
compiled to machine code by Numba (``pip install 'nnscratch[fast]'``).

* Each kernel computes what a layer's NumPy code computes, up to rounding
  (sums may be added in another order); ``tests/test_kernels.py`` checks
  each one against its NumPy counterpart.
* Without Numba, or with the environment variable ``NNSCRATCH_KERNELS=numpy``,
  nothing here runs and the layers use their NumPy code.
* Kernels release Python's lock (``nogil``): the callers share work between
  the cores with the same threads as the rest of the package
  (:mod:`nnscratch.core.parallel`), in parts that do not depend on the
  machine, so a seed gives the same weights everywhere.
* Where the kernel adds numbers in the NumPy code's order (Adam, the
  distortions, col2im) the results are the same to the last bit; the sparse
  products add in another order, so their float32 sums can differ in the
  last bits.
* Compiled code is cached on disk (``cache=True``): the first run compiles
  (a few seconds), later runs load it.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import threading

_SWITCH = "NNSCRATCH_KERNELS"


@functools.lru_cache(maxsize=1)
def enabled() -> bool:
    """True if the compiled kernels are used: Numba is installed and not switched off."""
    if not _wanted():
        return False
    try:  # installed but unusable (Numba often lags a new NumPy): the NumPy code runs instead
        import numba  # noqa: F401
    except Exception:
        return False
    return True


def _wanted() -> bool:
    """Numba is installed and the kernels are not switched off (without importing Numba: that is slow)."""
    switched_off = os.environ.get(_SWITCH, "").strip().lower() in ("numpy", "off", "0", "no")
    return not switched_off and importlib.util.find_spec("numba") is not None


def warm_up() -> None:
    """Import Numba and load a first compiled kernel in the background, while the caller reads its data.

    Both take about half a second (the compiler starts once per process);
    the first epoch would otherwise wait for them. Does nothing without Numba
    or with the kernels switched off.
    """
    if not _wanted():
        return
    # A daemon: a run that stops early (bad input) does not wait for it.
    threading.Thread(target=_load_a_kernel, name="nnscratch-warm-up", daemon=True).start()


def _load_a_kernel() -> None:
    try:
        if enabled():
            import numpy as np

            from .sparse import SparseRows

            SparseRows.from_dense(np.ones((1, 1), np.uint8))
    except Exception:  # noqa: BLE001 - a warm-up only: whatever fails here fails again, and is reported, where used
        pass


def jit(function):
    """Compile ``function`` with Numba when it is first called: nogil, cached on disk.

    Only kernels modules import this, and only callers that checked
    :func:`enabled` call them, so a missing Numba is never an error.
    """
    compiled = None
    lock = threading.Lock()  # two threads calling first would otherwise compile twice

    @functools.wraps(function)
    def call(*args):
        nonlocal compiled
        if compiled is None:
            with lock:
                if compiled is None:
                    import numba

                    compiled = numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)(function)
        return compiled(*args)

    return call
