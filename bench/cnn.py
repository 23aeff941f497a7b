"""nnscratch's convolutional layers against PyTorch on the CPU: the same CNN, the same data, one run.

The benchmark CNN (issue #11)::

    Conv(1->32, 5x5, valid) ReLU MaxPool2 Conv(32->64, 5x5) ReLU MaxPool2
    Flatten Dense(64*4*4 -> 128) ReLU Dense(128 -> 10)

trained with Adam (lr 1e-3) on mini-batches of 128 for one epoch of full
MNIST (60000 train / 10000 test), pixels / 255, then scored on the test set
in batches of 500 (so memory stays bounded). He-normal weights on our side,
PyTorch's own default initialisation on its side.

Each side runs as a whole process (this file with ``--worker nnscratch|torch``),
timed end to end from here: interpreter start, imports, reading the data,
training, scoring. The two alternate ``--repeat`` times and the medians are
compared, as ratios (the absolute seconds depend on the machine and its
load, which is printed). PyTorch keeps its default threads (one per core);
nnscratch's loop keeps BLAS on one thread and Conv2D and MaxPool2D share each
batch between the cores (core/parallel.py); with Numba installed the window
copies and max pooling are compiled loops (core/kernels/conv.py; ``--numpy``
measures the NumPy code alone).
Peak memory is each process's VmHWM, read at its end.

``--profile`` prints instead how long each nnscratch layer takes, forward and
backward, on batches of 128 (median of ``--batches``), in this process.

``--recipe`` runs instead the recipe proposed for ``--preset cnn`` (see
:func:`recipe_cnn`), nnscratch alone, as one whole process: the test accuracy
after each epoch and the whole process's time, the issue's 15-minute budget.

Usage::

    pip install -e '.[bench]'        # torch==2.13.0, CPU build
    python bench/cnn.py [--data ../shared/data/mnist] [--repeat 3] [--json out.json]
    python bench/cnn.py --profile
    python bench/cnn.py --recipe [--epochs 8]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
LR, BATCH, EPOCHS, EVAL_BATCH = 1e-3, 128, 1, 500
BLAS_THREADS = 1  # in the training loop, as nnscratch's; None (BLAS's default) with --conv-workers 0
RECIPE_EPOCHS = 8


def load(data):
    """Full MNIST as float32 images (N, 1, 28, 28) in [0, 1] and integer labels, read by nnscratch."""
    from nnscratch.files.data import load as load_split

    split = load_split(data)
    def images(rows):
        return (rows.astype(np.float32) / np.float32(255)).reshape(-1, 1, 28, 28)
    return images(split.train.images), split.train.labels.astype(np.intp), \
        images(split.test.images), split.test.labels.astype(np.intp)


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


# --------------------------------------------------------------------------- #
# nnscratch: the layers, a minimal loop
# --------------------------------------------------------------------------- #
BENCH_LAYERS = "conv 32 5x5, relu, maxpool 2, conv 64 5x5, relu, maxpool 2, flatten, dense 128, relu"
RECIPE_LAYERS = ("conv 32 5x5, batchnorm, relu, maxpool 2, conv 64 5x5, batchnorm, relu, maxpool 2, flatten, "
                 "dense 256, batchnorm, relu, dropout 0.3")  # --preset cnn


def layers_of(text: str, rng) -> list:
    """The layers of ``network_from_layers(text)`` (He init) after its input step.

    The bench feeds images already scaled and shaped (N, 1, 28, 28), so the
    Rescale and Reshape in front are left out; dropout draws from ``rng``.
    """
    from nnscratch import network_from_layers
    from nnscratch.core.layers import Dropout

    network = network_from_layers(text, init="he", seed=int(rng.integers(2**31)))
    layers = network.layers[2:]
    layers[0].input_grad = False  # nobody needs dC/dpixels
    for layer in layers:
        if isinstance(layer, Dropout):
            layer.rng = rng
    return layers


def benchmark_cnn(rng):
    """The benchmark CNN from nnscratch's layers."""
    return layers_of(BENCH_LAYERS, rng)


def recipe_cnn(rng):
    """The ``--preset cnn`` network: the benchmark CNN with batch normalisation, 256 neurons and dropout."""
    return layers_of(RECIPE_LAYERS, rng)


def params_and_grads(layers):
    """Parallel lists for the optimizer. (Today's Dense keeps ``dW``/``db``; the new contract layers a dict.)"""
    params, grads = [], []
    for layer in layers:
        if hasattr(layer, "params"):
            params += layer.params().values()
            grads += [layer.grad[name] for name in layer.params()]
        else:
            params += layer.parameters()
            grads += layer.gradients()
    return params, grads


def train_epoch(layers, optimizer, X, y, rng, batch=BATCH, augment=None):
    """One epoch of mini-batches in a random order (each passed through ``augment``); the mean cost.

    BLAS runs on one thread, as in nnscratch's mini-batch training loop: the
    dense layers' products are small, and Conv2D shares its work between the
    cores itself (nnscratch.core.parallel).
    """
    from threadpoolctl import threadpool_limits

    from nnscratch.core.losses import softmax_cross_entropy

    params, grads = params_and_grads(layers)
    order, total = rng.permutation(len(X)), 0.0
    with threadpool_limits(BLAS_THREADS, user_api="blas"):
        for i in range(0, len(X), batch):
            rows = order[i:i + batch]
            out = X[rows] if augment is None else augment(X[rows])
            for layer in layers:
                out = layer(out)
            cost, grad, _ = softmax_cross_entropy(out, y[rows])
            for layer in reversed(layers):
                grad = layer.backward(grad)
            optimizer.step(params, grads)
            total += cost * len(rows)
    return total / len(X)


def accuracy(layers, X, y, batch=EVAL_BATCH) -> float:
    """Test accuracy, predicting in batches (prediction mode: no batch statistics, nothing kept)."""
    for layer in layers:
        layer.training = False
    correct = 0
    for i in range(0, len(X), batch):
        out = X[i:i + batch]
        for layer in layers:
            out = layer(out)
        correct += int(np.sum(out.argmax(axis=1) == y[i:i + batch]))
    for layer in layers:
        layer.training = True
    return correct / len(X)


def import_kernels() -> None:
    """Import Numba now if the layers will use it, as the PyTorch worker imports torch before its clock.

    The layers load their compiled loops on first use, inside the training
    loop; importing Numba (about 1 s) is the library's start-up, which the
    whole-process time counts for both sides and the training loop for
    neither. (Loading each compiled loop from the disk cache stays inside.)
    """
    from nnscratch.core import kernels

    if kernels.enabled():
        import numba  # noqa: F401


def run_nnscratch(data, seed, epochs=EPOCHS):
    from nnscratch.core.optimizers import Adam

    X, y, X_test, y_test = load(data)
    rng = np.random.default_rng(seed)
    layers = benchmark_cnn(rng)
    optimizer = Adam(LR)
    import_kernels()
    start = time.perf_counter()
    for _ in range(epochs):
        train_epoch(layers, optimizer, X, y, rng)
    train_seconds = time.perf_counter() - start
    return {"train_seconds": train_seconds, "test_accuracy": accuracy(layers, X_test, y_test)}


def run_recipe(data, seed, epochs, shift=2):
    """The ``--preset cnn`` candidate: Adam lr 1e-3 on a cosine schedule (per epoch), batch 128,
    each training image shifted by up to ``shift`` pixels each way (as ``--preset cnn``: an affine
    distortion that only shifts), afresh every time it is used."""
    from nnscratch.core.augment import Augmenter
    from nnscratch.core.optimizers import Adam, cosine

    X, y, X_test, y_test = load(data)
    rng = np.random.default_rng(seed)
    layers = recipe_cnn(rng)
    optimizer = Adam(LR)
    shifts = Augmenter("affine", rotate=0, scale=0, shear=0, shift=shift)

    def augment(batch):
        return shifts(batch.reshape(len(batch), -1), rng).reshape(batch.shape)

    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        optimizer.lr = LR * cosine(epoch, epochs)
        cost = train_epoch(layers, optimizer, X, y, rng, augment=augment if shift else None)
        history.append(accuracy(layers, X_test, y_test))
        print(f"epoch {epoch + 1}: cost {cost:.4f}, test {100 * history[-1]:.2f} %, "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return {"train_seconds": time.perf_counter() - start, "test_accuracy": history[-1], "history": history}


# --------------------------------------------------------------------------- #
# PyTorch: the idiomatic loop on the same network
# --------------------------------------------------------------------------- #
def torch_cnn():
    """The benchmark CNN in PyTorch, its default initialisation."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10))


def run_torch(data, seed, epochs=EPOCHS):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    X, y, X_test, y_test = (torch.from_numpy(a) for a in load(data))
    model = torch_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X))
        for i in range(0, len(X), BATCH):
            rows = order[i:i + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(X[rows]), y[rows]).backward()
            optimizer.step()
    train_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(X_test[i:i + EVAL_BATCH]).argmax(1) == y_test[i:i + EVAL_BATCH]).sum())
                      for i in range(0, len(X_test), EVAL_BATCH))
    return {"train_seconds": train_seconds, "test_accuracy": correct / len(X_test)}


WORKERS = {"nnscratch": run_nnscratch, "torch": run_torch}


# --------------------------------------------------------------------------- #
# Per-layer times
# --------------------------------------------------------------------------- #
def profile(data, batches: int, seed: int) -> None:
    """Median ms of each layer's forward and backward over ``batches`` training batches."""
    from threadpoolctl import threadpool_limits

    from nnscratch.core.losses import softmax_cross_entropy

    X, y, _, _ = load(data)
    rng = np.random.default_rng(seed)
    layers = benchmark_cnn(rng)
    names = [type(layer).__name__ for layer in layers]
    forward, backward = [[] for _ in layers], [[] for _ in layers]
    limit = threadpool_limits(BLAS_THREADS, user_api="blas")  # as in train_epoch
    for _ in range(batches + 3):
        rows = rng.choice(len(X), BATCH, replace=False)
        out = X[rows]
        for i, layer in enumerate(layers):
            start = time.perf_counter()
            out = layer(out)
            forward[i].append(time.perf_counter() - start)
        _, grad, _ = softmax_cross_entropy(out, y[rows])
        for i in reversed(range(len(layers))):
            start = time.perf_counter()
            grad = layers[i].backward(grad)
            backward[i].append(time.perf_counter() - start)
    limit.restore_original_limits()
    def ms(times):
        return 1000 * statistics.median(times[3:])  # the first batches warm up
    print(f"ms per batch of {BATCH} (median of {batches}), {code_used()}, load {os.getloadavg()[0]:.1f}:")
    for name, f, b in zip(names, forward, backward):
        print(f"  {name:10s} forward {ms(f):6.2f}  backward {ms(b):6.2f}")
    print(f"  {'total':10s} forward {sum(map(ms, forward)):6.2f}  backward {sum(map(ms, backward)):6.2f}")


# --------------------------------------------------------------------------- #
def measure(name, data, seed, epochs=EPOCHS, variant=()):
    """Run one worker as a whole process; its wall time and its report."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--worker", name, "--data", str(data), "--seed", str(seed),
                           "--epochs", str(epochs), *variant], check=False, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: the {name} worker failed (its messages are above)")
    return {"wall_seconds": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST IDX folder (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate the two workers N times; report medians")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="per-layer times of nnscratch's network instead")
    parser.add_argument("--batches", type=int, default=30, help="batches to time with --profile")
    parser.add_argument("--recipe", action="store_true", help="run the --preset cnn candidate instead")
    parser.add_argument("--epochs", type=int, help=f"epochs (default: {EPOCHS}, with --recipe {RECIPE_EPOCHS})")
    parser.add_argument("--shift", type=int, default=2, help="with --recipe: random shifts of up to N pixels "
                        "(default: %(default)s; 0: none)")
    parser.add_argument("--conv-workers", type=int, help="variant: threads sharing a batch in Conv2D, BLAS "
                        "on one thread (0: none, BLAS's own threads share the products instead)")
    parser.add_argument("--chunk-kb", type=int, help="variant: Conv2D's chunk of columns in kB (0: no chunks)")
    parser.add_argument("--numpy", action="store_true", help="variant: the layers' NumPy code only, no compiled "
                        "kernels (as without Numba)")
    parser.add_argument("--worker", choices=[*WORKERS, "recipe"], help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not Path(args.data).is_dir():
        sys.exit(f"bench: {args.data}: no MNIST folder there (give --data)")
    variant = variant_flags(args)
    if args.worker:
        if args.worker == "recipe":
            result = run_recipe(args.data, args.seed, args.epochs, args.shift)
        else:
            result = WORKERS[args.worker](args.data, args.seed, args.epochs)
        print(json.dumps({**result, "peak_mb": peak_mb()}))
        return
    if args.profile:
        return profile(args.data, args.batches, args.seed)
    if args.recipe:
        return recipe(args)
    if importlib.util.find_spec("torch") is None:
        sys.exit("bench: PyTorch is not installed; pip install -e '.[bench]' (torch==2.13.0, CPU build)")
    loads = [os.getloadavg()[0]]
    runs = {name: [] for name in WORKERS}
    for _ in range(args.repeat):
        for name in WORKERS:
            r = measure(name, args.data, args.seed, args.epochs or EPOCHS, variant if name == "nnscratch" else ())
            runs[name].append(r)
            print(f"  {name:9s} whole process {r['wall_seconds']:6.1f} s, training loop {r['train_seconds']:6.1f} s, "
                  f"test {100 * r['test_accuracy']:.2f} %, peak {r['peak_mb']:5.0f} MB, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            loads.append(os.getloadavg()[0])
    med = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    ratio = {key: med["nnscratch"][key] / med["torch"][key] for key in ("train_seconds", "wall_seconds")}
    print(f"benchmark CNN, Adam lr {LR:g}, batch {BATCH}, {args.epochs or EPOCHS} epoch(s) of full MNIST, torch "
          f"{torch_version()} on its default threads; nnscratch {' '.join(variant) or 'as it is'}, {code_used()}; "
          f"median of {args.repeat}; 1-min load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores:")
    for name, m in med.items():
        print(f"  {name:9s} test accuracy {100 * m['test_accuracy']:.2f} %, peak memory {m['peak_mb']:.0f} MB")
    print(f"time ratio nnscratch / torch: training loop {ratio['train_seconds']:.2f}x, "
          f"whole process {ratio['wall_seconds']:.2f}x")
    if args.json:
        record = {"runs": runs, "median": med, "ratio_training_loop": ratio["train_seconds"],
                  "ratio_whole_process": ratio["wall_seconds"], "load": loads}
        Path(args.json).write_text(json.dumps(record, indent=2))


def recipe(args) -> None:
    """The --preset cnn candidate as one whole process; prints its accuracy and time."""
    epochs = args.epochs or RECIPE_EPOCHS
    load_before = os.getloadavg()[0]
    r = measure("recipe", args.data, args.seed, epochs, [*variant_flags(args), "--shift", str(args.shift)])
    print(f"--preset cnn candidate, {epochs} epochs, shifts of up to {args.shift} px: "
          f"test accuracy {100 * r['test_accuracy']:.2f} % "
          f"(by epoch: {', '.join(f'{100 * a:.2f}' for a in r['history'])}); whole process "
          f"{r['wall_seconds'] / 60:.1f} min, training {r['train_seconds'] / 60:.1f} min, peak {r['peak_mb']:.0f} MB; "
          f"1-min load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores")
    if args.json:
        Path(args.json).write_text(json.dumps({**r, "epochs": epochs}, indent=2))


def variant_flags(args) -> list[str]:
    """Set Conv2D's speed knobs in this process as asked; the flags that ask the same of a worker."""
    global BLAS_THREADS
    from nnscratch.core import parallel

    flags = []
    if args.conv_workers is not None:
        parallel.WORKERS = args.conv_workers
        BLAS_THREADS = None if args.conv_workers == 0 else 1
        flags += ["--conv-workers", str(args.conv_workers)]
    if args.chunk_kb is not None:
        parallel.CHUNK_BYTES = 1024 * args.chunk_kb if args.chunk_kb else 1 << 40
        flags += ["--chunk-kb", str(args.chunk_kb)]
    if args.numpy:
        os.environ["NNSCRATCH_KERNELS"] = "numpy"  # read by core.kernels.enabled(), here and in the workers
        flags += ["--numpy"]
    return flags


def code_used() -> str:
    """Which code nnscratch's layers run here: the compiled kernels or NumPy alone."""
    from nnscratch.core import kernels

    kernels.enabled.cache_clear()
    return "compiled loops (Numba)" if kernels.enabled() else "NumPy code only"


def torch_version() -> str:
    import torch

    return torch.__version__


if __name__ == "__main__":
    main()
