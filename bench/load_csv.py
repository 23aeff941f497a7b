"""How fast, and in how much memory, does nnscratch load the blog's CSV?

Each loader runs in a fresh Python process (so one run's memory cannot hide
another's), several times, and we keep the fastest run. The peer is NumPy's
own C CSV reader, ``np.loadtxt(..., dtype=np.uint8)``, measured in the same
run: the machine is shared, so a ratio means more than a time.

Memory is reported two ways:

* ``peak MB``: tracemalloc's peak of NumPy and Python allocations during the
  load (a separate run, since tracing slows things down);
* ``rss MB``: the process's peak resident size (``ru_maxrss``) minus what it
  held after the imports, i.e. what loading added.

Usage::

    python bench/load_csv.py [--data ../shared/data/digits-42k/data.csv] [--repeat 3] [--git-rev 982b8b4]

``--git-rev REV`` also measures ``load_csv`` as it was at commit REV (its
``data.py`` taken from git), to compare a change with what came before.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "digits-42k" / "data.csv"

LOADERS = {
    "nnscratch.files.data.load_csv": "from nnscratch.files.data import load_csv as load",
    "numpy.loadtxt (peer)": (
        "import numpy as np\n"
        "def load(path):\n"
        "    return np.loadtxt(path, delimiter=',', skiprows=1, dtype=np.uint8)\n"
    ),
}

CHILD = """
import json, resource, sys, time, tracemalloc
{setup}
path, trace = sys.argv[1], sys.argv[2] == "1"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if trace:
    tracemalloc.start()
start = time.perf_counter()
result = load(path)
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1] if trace else None
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
arrays = vars(result).values() if hasattr(result, "images") else [result]
nbytes = sum(getattr(a, "nbytes", 0) for a in arrays)
print(json.dumps({{"seconds": seconds, "peak": peak, "rss_added": (after - before) * 1024, "nbytes": nbytes}}))
"""


def run_child(setup: str, path: Path, trace: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(setup=setup), str(path), "1" if trace else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def loader_at(rev: str, folder: Path) -> str:
    """Setup code importing ``load_csv`` from ``src/nnscratch/data.py`` as it was at ``rev``."""
    repo = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{rev}:src/nnscratch/data.py"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout
    (folder / "data_at_rev.py").write_text(source.replace("from .errors import", "from nnscratch.errors import"))
    return f"import sys; sys.path.insert(0, {str(folder)!r})\nfrom data_at_rev import load_csv as load"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--git-rev", help="also measure load_csv as it was at this commit")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        loaders = dict(LOADERS)
        if args.git_rev:
            loaders[f"load_csv at {args.git_rev}"] = loader_at(args.git_rev, Path(tmp))
        return measure(args, loaders)


def measure(args, loaders: dict) -> int:
    """Time each loader (best of --repeat fresh processes), then trace its memory once."""
    if not args.data.is_file():
        print(f"no CSV at {args.data}; pass --data PATH", file=sys.stderr)
        return 2
    size_mb = args.data.stat().st_size / 1e6
    print(f"{args.data} ({size_mb:.0f} MB), best of {args.repeat} runs per loader, each in a fresh process")
    results = {}
    for _ in range(args.repeat):  # interleaved, so that load on the machine hits all alike
        for name, setup in loaders.items():
            r = run_child(setup, args.data, trace=False)
            best = results.setdefault(name, r)
            if r["seconds"] < best["seconds"]:
                results[name] = {**r}
    for name, setup in loaders.items():
        results[name]["peak"] = run_child(setup, args.data, trace=True)["peak"]
    peer = results["numpy.loadtxt (peer)"]["seconds"]
    print(f"{'loader':28} {'seconds':>8} {'vs peer':>8} {'peak MB':>8} {'rss MB':>7}")
    for name, r in results.items():
        print(f"{name:28} {r['seconds']:8.3f} {peer / r['seconds']:7.1f}x {r['peak'] / 1e6:8.0f} "
              f"{r['rss_added'] / 1e6:7.0f}")
    ours = results["nnscratch.files.data.load_csv"]
    print(f"nnscratch loads {size_mb:.0f} MB of CSV in {ours['seconds']:.2f} s "
          f"({peer / ours['seconds']:.1f}x faster than np.loadtxt), peak {ours['peak'] / 1e6:.0f} MB "
          f"of allocations for a result of {ours['nbytes'] / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
