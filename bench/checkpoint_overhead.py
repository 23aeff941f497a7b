"""What checkpoints cost: seconds to write model.npz against seconds per epoch.

    python bench/checkpoint_overhead.py [--data /work/shared/data/mnist] [--epochs 2]

For each preset, trains a few epochs (timing each epoch as the Trainer does)
and writes the run's checkpoint 5 times (timing each write), then prints the
ratio: the share of training time that checkpoints add at the preset's
checkpoint interval (every epoch for mini-batch runs, every epochs/20 for
full-batch ones). Both are measured in the same process, one after the other.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

from nnscratch import data
from nnscratch.apps.experiment import build, settings_for
from nnscratch.core.training import Trainer
from nnscratch.files.checkpoint import checkpoint_every, data_record, save_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="MNIST IDX folder or CSV (default: the bundled sample)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    split = data.load(args.data)
    print(f"data: {split.how}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("seed", "default", "best"):
            settings = settings_for(name, data=args.data, epochs=args.epochs)
            model, config = build(settings, 784)
            trainer = Trainer(model, split.train.images, split.train.labels, config)
            trainer.run()
            record = data_record(settings, split)
            path = Path(tmp) / "model.npz"
            writes = []
            for _ in range(5):
                start = time.perf_counter()
                save_checkpoint(trainer, path, settings, record)
                writes.append(time.perf_counter() - start)
            epoch, write = statistics.median(trainer.history.seconds), statistics.median(writes)
            every = checkpoint_every(build(settings_for(name), 784)[1])  # at the preset's planned epochs
            print(f"{name:8s} epoch {epoch:7.3f} s, checkpoint {write:6.3f} s ({path.stat().st_size / 1e6:.1f} MB), "
                  f"every {every} epoch(s): +{100 * write / (every * epoch):.1f} % training time")


if __name__ == "__main__":
    main()
