"""Running trials with Ray Tune, on this machine or on a cluster.

Ray Tune decides where and when each trial runs, and (with ``--scheduler asha``)
which trials to stop early; nnscratch only says what a trial is. Three pieces:

* :func:`ray_session`: an embedded Ray on this machine (node address 127.0.0.1,
  started and stopped here), or a connection to a running cluster;
* :func:`tune_trial`: the function Tune runs for each trial, on any machine;
  it trains in a temporary folder and ships the run folder's files to
* :class:`Collector`: a small actor placed on the machine that runs the
  command, which writes them under ``DIR/trials/``. No shared disk is needed:
  the files travel through Ray's object store.

Import it through :func:`nnscratch.apps.sweep.load_engine`, which quiets Ray first.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import tempfile
import time
import warnings
from pathlib import Path

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ...errors import DataError, NnscratchError
from .trial import train_trial


@contextlib.contextmanager
def ray_session(address: str | None):
    """Ray for the duration of the block: a running cluster at ``address``, or our own.

    Our own has 127.0.0.1 as its node address, no dashboard and every core of
    this machine, and is shut down on the way out, so no Ray process outlives
    the command (its processes also die with ours if we are killed). Ray 2.60's
    servers listen on every interface all the same; Ray's token authentication,
    on by default for a Ray that ray.init starts, is what keeps others out.
    """
    warnings.filterwarnings("ignore", module="ray")
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    on_sigterm = signal.getsignal(signal.SIGTERM)  # Ray puts its own in, which aborts with a stack dump
    if address is None:
        start_own_ray(quiet)
    else:
        try:
            ray.init(address=address, **local_node_ip(address), **quiet)
        except ConnectionError as exc:
            raise DataError(f"--address {address}: {exc}; is `ray start --head` running there? A cluster with "
                            "token authentication also needs RAY_AUTH_MODE=token and its token "
                            "(docs/sweep.md)") from None
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        ray.shutdown()


def start_own_ray(quiet: dict, attempts: int = 2) -> None:
    """Start a Ray on this machine; a second try if the first times out.

    Ray's raylet waits a fixed time (about 30 s in Ray 2.60) for its Python
    agents to start, and aborts if they are late, which happens on a machine
    busy with other work; a second start finds their files in the disk cache.
    """
    for attempt in range(1, attempts + 1):
        try:
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                     num_cpus=os.cpu_count(), **quiet)
            return
        except Exception as exc:
            if "timed out" not in str(exc):
                raise
            ray.shutdown()  # whatever did start
            if attempt == attempts:
                raise NnscratchError(f"Ray did not start in time ({exc}) Is the machine overloaded (uptime)? "
                                     "Run the command again: finished trials are kept") from None


def local_node_ip(address: str) -> dict:
    """A cluster on this machine's loopback is joined as 127.0.0.1, else Ray finds our address."""
    host = address.rsplit(":", 1)[0]
    return {"_node_ip_address": "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {}


@ray.remote(num_cpus=0)
class Collector:
    """Writes each trial's run folder under ``trials_dir``, on the machine that runs the sweep."""

    def __init__(self, trials_dir: str):
        self.trials_dir = Path(trials_dir)

    def store(self, trial_id: str, files: dict) -> None:
        """Replace ``trials_dir/trial_id`` by ``files`` (name -> bytes), all at once."""
        final, incoming = self.trials_dir / trial_id, self.trials_dir / f".{trial_id}.incoming"
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        for name, data in files.items():
            (incoming / name).write_bytes(data)
        shutil.rmtree(final, ignore_errors=True)
        incoming.rename(final)


def start_collector(trials_dir: Path):
    """A :class:`Collector` on this machine's Ray node (wherever the trials run)."""
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    return Collector.options(scheduling_strategy=here).remote(str(trials_dir.resolve()))


def folder_files(folder: Path) -> dict:
    """The files of a run folder by name (half-written temporary files left out)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.endswith(".tmp")}


def tune_trial(config: dict, trials: dict, collector) -> None:
    """What Tune runs for one trial: train, ship the run folder home, report the outcome."""
    trial_id = config["trial"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nnscratch-trial-") as tmp:
        folder = Path(tmp) / trial_id
        outcome = train_trial(trials[trial_id], folder, tune.report)
        if folder.is_dir():
            ray.get(collector.store.remote(trial_id, folder_files(folder)))
    tune.report({**outcome, "seconds": round(time.perf_counter() - start, 2), "final": True})


class Outcomes(tune.Callback):
    """Hands ``on_record(trial_id, record)`` the outcome of each trial as soon as it ends."""

    def __init__(self, on_record):
        self.on_record = on_record

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        if result.get("final"):
            record = {k: result.get(k) for k in ("status", "message", "test_accuracy", "best_val_accuracy",
                                                 "epoch", "seconds")}
        else:  # ended without its final report: the scheduler stopped it
            record = {"status": "stopped", "best_val_accuracy": result.get("best_val_accuracy"),
                      "epoch": result.get("epoch", 0), "seconds": round(result.get("time_total_s", 0.0), 2)}
        self.on_record(trial.config["trial"], clean(record))

    def on_trial_error(self, iteration, trials, trial, **info):
        result = trial.last_result or {}
        self.on_record(trial.config["trial"], clean({
            "status": "error", "message": f"the trial's Ray worker failed ({first_line(trial.error_file)})",
            "best_val_accuracy": result.get("best_val_accuracy"), "epoch": result.get("epoch", 0),
            "seconds": round(result.get("time_total_s", 0.0), 2)}))


def clean(record: dict) -> dict:
    """The record without empty fields and NaN (no validation epoch yet), as plain JSON."""
    record = {("epochs" if k == "epoch" else k): v for k, v in record.items() if v is not None}
    return {k: v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))}


def first_line(error_file) -> str:
    """The last line of a Ray error file (the exception itself), or what is known."""
    try:
        lines = [line for line in Path(error_file).read_text().splitlines() if line.strip()]
        return lines[-1].strip()
    except (OSError, TypeError, IndexError):
        return "no error file"


def run_trials(trials: dict, trials_dir: Path, on_record, address=None, max_concurrent=None,
               scheduler=None, max_epochs=1) -> None:
    """Run ``trials`` (id -> settings) with Ray Tune; each outcome goes to ``on_record``."""
    with ray_session(address):
        collector = start_collector(trials_dir)
        storage = tempfile.mkdtemp(prefix="nnscratch-tune-")  # Tune's own bookkeeping, thrown away
        try:
            tuner = tune.Tuner(
                tune.with_parameters(tune_trial, trials=trials, collector=collector),
                param_space={"trial": tune.grid_search(list(trials))},
                # reuse_actors: the next trial runs in a worker that has imported everything already
                tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                            scheduler=make_scheduler(scheduler, max_epochs)),
                run_config=tune.RunConfig(name="sweep", storage_path=storage, verbose=0,
                                          callbacks=[Outcomes(on_record)]),
            )
            tuner.fit()
        finally:
            shutil.rmtree(storage, ignore_errors=True)


def make_scheduler(name: str | None, max_epochs: int):
    """Tune's trial scheduler: first come first served, or ASHA on the validation accuracy."""
    if name is None:
        return None
    # One epoch more than the longest trial: ASHA stops any trial that reaches max_t,
    # which would cut a finishing trial off before it reports its test accuracy.
    return ASHAScheduler(time_attr="epoch", metric="val_accuracy", mode="max", max_t=max_epochs + 1,
                         grace_period=1)
