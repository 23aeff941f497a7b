"""``nnscratch serve`` under load: requests/s and latency at 1, 16 and 64 concurrent clients.

    python bench/serve_load.py [--model RUN] [--requests 2000] [--clients 1,16,64] [--repeats 1]

Each client POSTs a drawn digit (a PNG of a 280x280 canvas, as the page
sends) on a new connection and sends the next when answered. Every
combination runs on a quiet machine and again with a CPU-bound process beside
the server (the machine has 2 cores), for two servers in alternation, each in
its own process:

* ``serve``: ``nnscratch serve`` as shipped (listen backlog 1024, at most 256
  connections at once, 503 beyond 64 drawings in hand, 10 s per request);
* ``stdlib``, the peer: the same handler on the standard library's defaults,
  a listen backlog of 5 and a new thread for every connection, no cap (how
  ``nnscratch serve`` ran before).

It prints, per run: answers (200, 503 with Retry-After), connection errors
(reset, refused, cut short), answers that differ from a lone request's for the
same picture, requests answered per second, the 50th and 99th percentile
latency (of every request, failed ones included), and the
machine's 1-minute load average; then ``serve``'s requests/s as a ratio of
the peer's in the same conditions (the median over ``--repeats``). The clients
are Python threads in this process, so at 64 clients they take CPU from the
server too; that is the same for both servers.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from loadtools import cpu_hog, drawn_digit, hammer, post, serving, serving_command  # noqa: E402 - after the path

PEER = """
import sys
from pathlib import Path
from nnscratch.apps.web.server import make_server, open_reader
server = make_server(open_reader(Path(sys.argv[1]), log=lambda *a: None), "127.0.0.1", 0,
                     backlog=5, threads=None, queue=10**9, timeout=30)
print(f"open http://127.0.0.1:{server.server_address[1]}/", flush=True)
server.serve_forever()
"""


def quick_model(folder: Path) -> Path:
    """A 784-64-32-10 relu network trained on the bundled sample (a few seconds), like serve's quick model."""
    run = folder / "run"
    subprocess.run([sys.executable, "-m", "nnscratch", "train", "--out", str(run), "--hidden", "64,32",
                    "--activation", "relu", "--epochs", "5"], check=True, capture_output=True,
                   env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def measure(address, pictures, lone, requests: int, clients: int) -> dict:
    """One run: ``requests`` POSTs from ``clients`` threads, classified and timed."""
    started = time.perf_counter()
    outcomes = hammer(address, pictures, requests, clients)
    took = time.perf_counter() - started
    answered = [o for o in outcomes if o.status == 200]
    return {
        "ok": len(answered),
        "busy": sum(o.status == 503 and o.retry_after is not None for o in outcomes),
        "errors": sum(o.error is not None for o in outcomes),
        "wrong": sum(o.body != lone[o.picture] for o in answered),
        "rate": sum(o.error is None for o in outcomes) / took,  # complete answers (200 or 503) per second
        "p50": 1000 * percentile([o.seconds for o in outcomes], 50),
        "p99": 1000 * percentile([o.seconds for o in outcomes], 99),
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a run folder or model file (default: a quick model trained first)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run (default: %(default)s)")
    parser.add_argument("--clients", default="1,16,64", help="concurrent clients, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each server per setting (default: 1)")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else quick_model(Path(tmp))
        pictures = [drawn_digit("PNG", digit) for digit in (1, 7, 4)]
        servers = {"serve": lambda: serving(model),
                   "stdlib": lambda: serving_command([sys.executable, "-c", PEER, str(model)])}
        print(f"{args.requests} requests per run; load average at start {os.getloadavg()[0]:.2f} (2 cores)")
        print(f"{'server':7} {'machine':8} {'clients':>7} {'200':>5} {'503':>4} {'errors':>6} {'wrong':>5} "
              f"{'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'load':>5}")
        rates = {}
        for machine in ("quiet", "cpu hog"):
            for n in clients:
                for _ in range(args.repeats):
                    for name, start in servers.items():  # interleaved: the two servers see the same machine
                        with start() as address:
                            lone = [post(address, picture).body for picture in pictures]
                            if machine == "quiet":
                                row = measure(address, pictures, lone, args.requests, n)
                            else:
                                with cpu_hog():
                                    row = measure(address, pictures, lone, args.requests, n)
                        rates.setdefault((machine, n, name), []).append(row["rate"])
                        print(f"{name:7} {machine:8} {n:7} {row['ok']:5} {row['busy']:4} {row['errors']:6} "
                              f"{row['wrong']:5} {row['rate']:6.0f} {row['p50']:7.1f} {row['p99']:7.1f} "
                              f"{row['load']:5.2f}", flush=True)
        print("\nserve's requests/s as a ratio of the standard library's defaults (median of the repeats):")
        for machine in ("quiet", "cpu hog"):
            ratios = [statistics.median(rates[machine, n, "serve"]) / statistics.median(rates[machine, n, "stdlib"])
                      for n in clients]
            print(f"  {machine:8} " + "  ".join(f"{n} clients: {r:.2f}x" for n, r in zip(clients, ratios)))


if __name__ == "__main__":
    main()
