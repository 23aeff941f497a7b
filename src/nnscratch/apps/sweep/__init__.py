"""``nnscratch sweep``: train many runs that differ in a few settings, and compare them.

The pieces, in the order a sweep uses them:

* :mod:`.spec`: the sweep file, checked whole before anything runs, and its trials;
* :mod:`.trial`: one trial, an ordinary ``nnscratch train`` run;
* :mod:`.engine`: Ray Tune runs the trials, here or on a cluster (Ray is an optional extra);
* :mod:`.results`: a record per trial, results.csv, sweep.png and the best trial.

A sweep folder ``DIR`` holds ``trials/ID/`` (each trial's run folder and its
``trial.json``), ``results.csv`` and ``sweep.png``. A trial with a record is
done; running the same command again runs only the others, so a killed sweep
loses only the trials it was training.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ...errors import DataError
from . import results
from .spec import read_sweep
from .trial import DONE

INSTALL = "nnscratch sweep needs Ray Tune, an optional extra: pip install 'nnscratch[sweep]'"
RAY_SETTINGS = {  # set before Ray is imported (unless the user set them)
    # One progress line per trial is all the user sees:
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables, no banners
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV, JSON or TensorBoard files of Tune's own
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C stops the command, which then stops Ray
    "RAY_USAGE_STATS_ENABLED": "0",  # and never phone home
}


def load_engine():
    """The Ray side of the sweep, or DataError saying how to install it."""
    for name, value in RAY_SETTINGS.items():
        os.environ.setdefault(name, value)
    try:
        from . import engine
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in ("ray", "pandas", "pyarrow", "fsspec", "requests"):
            raise
        raise DataError(INSTALL) from None
    return engine


def check_address(address: str | None) -> None:
    """``--address`` is HOST:PORT, the address ``ray start --head`` prints."""
    if address is not None and not re.fullmatch(r"[^\s:/]+:\d{1,5}", address):
        raise DataError(f"--address {address!r}: give the cluster's HOST:PORT, e.g. 192.168.1.10:6379 "
                        "(what ray start --head prints)")


def run_sweep(file, out, address=None, max_concurrent=None, scheduler=None, log=print) -> dict:
    """Run the sweep in ``file`` into folder ``out``.

    Returns each trial's record (trial id -> record); a trial that did not end
    (the sweep was interrupted, or its Ray worker failed) has status "pending" or "error".
    """
    check_address(address)
    sweep = read_sweep(file)
    out = Path(out)
    trials_dir = out / "trials"
    records = results.done_records(sweep, trials_dir)
    todo = [t for t in sweep.trials if t.id not in records]
    log(f"{len(sweep.trials)} trials ({', '.join(sweep.swept)} swept)"
        + (f", {len(records)} done in an earlier run" if records else "")
        + (f"; running {len(todo)} on " + (f"the Ray cluster at {address}" if address else "this machine")
           if todo else ""))
    if todo:
        engine = load_engine()
        trials_dir.mkdir(parents=True, exist_ok=True)
        for trial in todo:  # what an unfinished trial left: it starts again from scratch
            shutil.rmtree(trials_dir / trial.id, ignore_errors=True)
        progress = Progress(sweep, records, out, log)
        engine.run_trials({t.id: t.settings for t in todo}, trials_dir, progress.record, address=address,
                          max_concurrent=max_concurrent, scheduler=scheduler, max_epochs=sweep.max_epochs)
    out.mkdir(parents=True, exist_ok=True)
    results.write_csv(sweep, records, out / "results.csv")
    results.plot_sweep(sweep, records, out / "sweep.png")
    log(summary(sweep, records, out))
    return {t.id: records.get(t.id, {"status": "pending"}) for t in sweep.trials}


class Progress:
    """Keeps each trial's record as it ends: trial.json, a line of progress, results.csv."""

    def __init__(self, sweep, records: dict, out: Path, log):
        self.sweep, self.records, self.out, self.log = sweep, records, out, log
        self.trials = {t.id: t for t in sweep.trials}

    def record(self, trial_id: str, record: dict) -> None:
        results.write_record(self.out / "trials", self.trials[trial_id], record)
        self.records[trial_id] = record
        self.log(f"[{len(self.records)}/{len(self.trials)}] {results.describe(self.sweep, trial_id)}: "
                 f"{results.outcome(record)}")
        results.write_csv(self.sweep, self.records, self.out / "results.csv")


def summary(sweep, records: dict, out: Path) -> str:
    """The last lines: the best trial, and what did not end."""
    best = results.best_trial(records)
    lines = ["no trial finished" if best is None else
             f"best: {results.describe(sweep, best)}: {results.outcome(records[best])}; "
             f"its run folder: {out / 'trials' / best}"]
    unfinished = [t.id for t in sweep.trials if records.get(t.id, {}).get("status") not in DONE]
    if unfinished:
        lines.append(f"{len(unfinished)} trials did not end ({', '.join(unfinished)}); "
                     "run the same command again to retry them")
    lines.append(f"results: {out / 'results.csv'}, {out / 'sweep.png'}")
    return "\n".join(lines)
