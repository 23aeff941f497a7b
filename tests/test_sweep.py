"""nnscratch sweep: the sweep file's checks, and real sweeps run by Ray Tune.

The Ray tests run every Ray process inside a network namespace that has only
the loopback interface (``unshare -n``, then ``ip link set lo up``; needs root,
as CI has), bound to 127.0.0.1: no test traffic can leave the machine. One
namespace and one ``ray start --head`` cluster serve the whole module. Each
Ray gets its own temporary folder (RAY_TMPDIR), which every process it starts
inherits in its environment: that is how the tests see that a sweep left no
Ray process behind.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nnscratch.apps.cli import main
from nnscratch.apps.sweep.spec import read_sweep, show

SRC = Path(__file__).resolve().parents[1] / "src"
GRID = """
[train]
epochs = 2

[grid]
lr = [0.003, 0.03]
hidden = [16, 64]
"""


def write(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_seconds(table: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in table]


# --------------------------------------------------------------------------- #
# The sweep file: checked whole before anything runs (no Ray needed)
# --------------------------------------------------------------------------- #
BAD_FILES = [
    ("[train]\nepochs = 2\n[grid]\nlearning_rate = [0.1]\n", "[grid] learning_rate: unknown setting"),
    ("[grid]\nlr = [0.1]\n[model]\nhidden = 3\n", "unknown table [model]"),
    ("[grid]\nlr = [0.1, -1]\n", "[grid] lr: -1 must be a positive finite number"),
    ("[grid]\nlr = 0.1\n", "[grid] lr: a [grid] entry is a non-empty list"),
    ("[grid]\nlr = [0.1, 0.1]\n", "[grid] lr: 0.1 is listed twice"),
    ("[grid]\nactivation = ['relu', 'swish']\n", "[grid] activation: 'swish' is not one of"),
    ("[grid]\nhidden = [[64, 0]]\n", "[grid] hidden: '64,0': every hidden layer needs 1 to"),
    ("[grid]\nepochs = [1.5]\n", "[grid] epochs: '1.5' is not a whole number"),
    ("[train]\nepochs = 2\n", "nothing to sweep"),
    ("[random]\nlr = { log_uniform = [1e-4, 1e-1] }\n", "[random] needs samples = N"),
    ("[random]\nsamples = 0\nlr = { log_uniform = [1e-4, 1e-1] }\n", "samples: 0 must be a whole number >= 1"),
    ("[random]\nsamples = 2\n", "[random] has samples but no ranges"),
    ("[random]\nsamples = 2\nlr = { normal = [0, 1] }\n", "[random] lr: a [random] entry is"),
    ("[random]\nsamples = 2\nlr = { uniform = [0.1, 0.01] }\n", "uniform needs low < high"),
    ("[random]\nsamples = 2\ndropout = { log_uniform = [0, 0.5] }\n", "log_uniform needs low > 0"),
    ("[random]\nsamples = 2\nhidden = { uniform = [16, 64] }\n", "uniform needs a numeric setting"),
    ("[train]\nlr = 0.1\n[grid]\nlr = [0.1, 0.2]\n", "lr is in both [train] and [grid]"),
    ("[train]\nvalidation_split = 0\n[grid]\nlr = [0.1]\n", "validation_split = 0: a sweep compares"),
    ("[train]\ndata = 'nowhere.csv'\n[grid]\nlr = [0.1]\n", "nowhere.csv: no such file or folder"),
    ("[grid]\nlr = [0.1\n", "not a valid TOML file"),
    ("[train]\nout = 'runs/x'\n[grid]\nlr = [0.1]\n", "[train] out: unknown setting"),
]


@pytest.mark.parametrize("text, message", BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_a_bad_sweep_file_gets_one_line_and_status_2_before_anything_runs(tmp_path, capsys, text, message):
    out = tmp_path / "out"
    assert main(["sweep", str(write(tmp_path, text)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_bad_flags_and_files_of_the_command(tmp_path, capsys):
    good = write(tmp_path, GRID)
    assert main(["sweep", str(good), "--out", str(tmp_path / "o"), "--address", "ray://head:10001"]) == 2
    assert "--address 'ray://head:10001': give the cluster's HOST:PORT" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("label,pixel0\n3,0\n")
    assert main(["sweep", str(write(tmp_path, f"[train]\ndata = '{bad_csv.name}'\n[grid]\nlr = [0.1]\n", "d.toml")),
                 "--out", str(tmp_path / "o")]) == 2  # the data is read once, before any trial
    assert "bad.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(good), "--out", str(tmp_path / "o"), "--scheduler", "hyperband"])
    assert exit_.value.code == 2
    assert not (tmp_path / "o").exists()


def test_without_ray_the_command_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    monkeypatch.delitem(sys.modules, "nnscratch.apps.sweep.engine", raising=False)
    assert main(["sweep", str(write(tmp_path, GRID)), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == ("nnscratch: error: nnscratch sweep needs Ray Tune, an optional extra: "
                                       "pip install 'nnscratch[sweep]'\n")


def test_trials_are_every_grid_combination_for_each_fixed_random_draw(tmp_path):
    text = """
[train]
epochs = 3
optimizer = "sgd"

[grid]
hidden = [[16], [32, 16]]

[random]
samples = 3
lr = { log_uniform = [1e-3, 1e-1] }
batch_size = { uniform = [16, 256] }
activation = { choice = ["relu", "tanh"] }
"""
    sweep = read_sweep(write(tmp_path, text))
    assert [t.id for t in sweep.trials] == ["000", "001", "002", "003", "004", "005"]
    assert sweep.swept == ["hidden", "lr", "batch_size", "activation"] and sweep.log_scale == {"lr"}
    assert [t.params["hidden"] for t in sweep.trials] == [[16], [32, 16]] * 3
    for first, second in zip(sweep.trials[::2], sweep.trials[1::2]):  # one draw serves the whole grid
        assert {k: v for k, v in first.params.items() if k != "hidden"} == \
               {k: v for k, v in second.params.items() if k != "hidden"}
    for trial in sweep.trials:
        lr, batch = trial.params["lr"], trial.params["batch_size"]
        assert 1e-3 <= lr <= 1e-1 and lr == float(f"{lr:.4g}")
        assert isinstance(batch, int) and 16 <= batch <= 256
        assert trial.settings["optimizer"] == "sgd" and trial.settings["epochs"] == 3
        assert trial.settings["validation_split"] == 0.1  # a sweep's default: trials compare on it
        assert trial.settings["batch_size"] == batch and trial.settings["hidden"] == trial.params["hidden"]
    again = read_sweep(tmp_path / "sweep.toml")  # the same file draws the same trials
    assert [t.settings for t in again.trials] == [t.settings for t in sweep.trials]


def test_a_trial_has_the_settings_nnscratch_train_gives_the_same_flags(tmp_path):
    text = "[train]\noptimizer = 'gd'\npatience = 3\n[grid]\nbatch-size = ['full', 32]\nlr = [0.5]\n"
    full, batch = read_sweep(write(tmp_path, text)).trials
    assert full.settings["batch_size"] is None and batch.settings["batch_size"] == 32
    assert full.settings["patience"] == 3 and full.settings["validation_split"] == 0.1


def test_results_table_figure_and_best_trial_from_records(tmp_path):
    from nnscratch.apps.sweep import results

    text = "[grid]\nlr = [0.01, 0.1]\n[random]\nsamples = 2\nactivation = { choice = ['relu', 'tanh'] }\n"
    sweep = read_sweep(write(tmp_path, text))
    records = {"000": {"status": "finished", "test_accuracy": 0.9, "best_val_accuracy": 0.88, "epochs": 2,
                       "seconds": 1.234},
               "001": {"status": "stopped", "best_val_accuracy": 0.1, "epochs": 1, "seconds": 0.5},
               "002": {"status": "finished", "test_accuracy": 0.91, "best_val_accuracy": 0.87, "epochs": 2,
                       "seconds": 1.0}}
    results.write_csv(sweep, records, tmp_path / "results.csv")
    assert [list(r.values()) for r in rows(tmp_path)] == [
        ["000", "0.01", sweep.trials[0].params["activation"], "finished", "0.9000", "0.8800", "2", "1.23"],
        ["001", "0.1", sweep.trials[1].params["activation"], "stopped", "", "0.1000", "1", "0.50"],
        ["002", "0.01", sweep.trials[2].params["activation"], "finished", "0.9100", "0.8700", "2", "1.00"],
        ["003", "0.1", sweep.trials[3].params["activation"], "pending", "", "", "", ""]]
    assert results.best_trial(records) == "000"  # the best validation accuracy, not the best test accuracy
    results.plot_sweep(sweep, records, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------- #
# Real sweeps, with Ray, in a namespace with only loopback
# --------------------------------------------------------------------------- #
def unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True,
                              timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_netns = pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("nsenter") is None or not unshare_works(),
    reason="needs unshare -n and nsenter (root, as in CI): the Ray tests run in a loopback-only network namespace")


class Namespace:
    """A network namespace with only loopback, kept open by a sleeping process."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"])
        deadline = time.monotonic() + 30
        while Path(f"/proc/{self.holder.pid}/comm").read_text().strip() != "sleep":  # lo is up
            assert time.monotonic() < deadline and self.holder.poll() is None, "namespace did not start"
            time.sleep(0.05)

    def command(self, *args) -> list:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", *map(str, args)]

    def close(self):
        self.holder.kill()
        self.holder.wait()


TOKEN = secrets.token_hex(32)  # Ray's token authentication, the same for every Ray of these tests


def ray_env(tmp: Path) -> dict:
    """The environment of a sweep or a cluster: its own RAY_TMPDIR, nnscratch importable, our token."""
    env = dict(os.environ, RAY_TMPDIR=str(tmp), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=TOKEN,
               PYTHONPATH=os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("RAY_ADDRESS", None)
    return env


def ray_processes(tmp: Path) -> dict[int, str]:
    """The running processes (pid -> command line) of the Ray whose RAY_TMPDIR is ``tmp``.

    Found by their environment, which every process of that Ray inherits, rather than by
    ``pgrep -f``: Ray renames its workers (``ray::IDLE``), and other Rays may run on the machine.
    """
    mark, found = f"RAY_TMPDIR={tmp}".encode(), {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # ended meanwhile, or not ours to read
            pass
    return found


def no_ray_left(tmp: Path, wait: float = 30.0) -> list[str]:
    """[] once no process of that Ray is left; the command lines of those left after ``wait`` seconds.

    Polled, so it returns at once when nothing is left.
    """
    deadline = time.monotonic() + wait
    while ray_processes(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    return list(ray_processes(tmp).values())


def kill_ray(tmp: Path) -> None:
    """kill -9 every process of the Ray whose RAY_TMPDIR is ``tmp``; return once they are gone."""
    for pid in ray_processes(tmp):
        with contextlib.suppress(OSError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    assert no_ray_left(tmp, wait=10) == []


@pytest.fixture(scope="module")
def netns():
    pytest.importorskip("ray.tune", reason="needs Ray Tune: pip install 'nnscratch[sweep]'")
    namespace = Namespace()
    yield namespace
    namespace.close()


@pytest.fixture(scope="module")
def own_ray_tmp():
    """RAY_TMPDIR of the Ray each sweep starts for itself (short: Ray's socket paths must stay short)."""
    tmp = Path(tempfile.mkdtemp(prefix="nnray-", dir="/tmp"))
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(netns):
    """A one-node Ray cluster started by ``ray start --head`` on 127.0.0.1 in the namespace; its address."""
    tmp = Path(tempfile.mkdtemp(prefix="nnrayc-", dir="/tmp"))
    env, ray = ray_env(tmp), [sys.executable, "-m", "ray.scripts.scripts"]
    started = subprocess.run(netns.command(*ray, "start", "--head", "--node-ip-address", "127.0.0.1",
                                           "--port", 6390, "--num-cpus", 2, "--include-dashboard", "false",
                                           "--disable-usage-stats"),
                             env=env, capture_output=True, text=True, timeout=180, check=False)
    assert started.returncode == 0, started.stderr[-2000:]
    yield "127.0.0.1:6390"
    kill_ray(tmp)  # what `ray stop --force` does, without the seconds it takes to start
    shutil.rmtree(tmp, ignore_errors=True)


def sweep_command(netns, file: Path, out: Path, *flags) -> list:
    return netns.command(sys.executable, "-m", "nnscratch", "sweep", file, "--out", out, *flags)


def run_sweep(netns, tmp: Path, file: Path, out: Path, *flags) -> subprocess.CompletedProcess:
    done = subprocess.run(sweep_command(netns, file, out, *flags), env=ray_env(tmp), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def local_grid(netns, own_ray_tmp, tmp_path_factory):
    """The 2x2 grid on our own Ray, killed after its first trial, then run again to the end.

    One trial at a time, so that the kill finds trials still to run. Returns
    the sweep folder and the second run's output.
    """
    folder = tmp_path_factory.mktemp("grid")
    file, out = write(folder, GRID), folder / "out"
    killed = subprocess.Popen(sweep_command(netns, file, out, "--max-concurrent", 1), env=ray_env(own_ray_tmp),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (out / "trials" / "000" / "trial.json").exists():
        assert killed.poll() is None and time.monotonic() < deadline, "the first trial did not end"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # A kill -9 gives the command no chance to stop its Ray. Ray's own processes notice that
    # their parent died and exit by themselves, but only after a minute or more on a busy
    # machine. No leftovers is asked of a command that ends (normally, Ctrl-C, SIGTERM), which
    # the resumed run below checks; here we end the killed Ray's processes ourselves.
    kill_ray(own_ray_tmp)
    first = json.loads((out / "trials" / "000" / "trial.json").read_text())
    resumed = run_sweep(netns, own_ray_tmp, file, out)
    return {"file": file, "out": out, "first": first, "resumed": resumed, "left": no_ray_left(own_ray_tmp)}


@needs_netns
def test_a_grid_killed_after_a_trial_resumes_and_ends_with_4_finished_rows(local_grid):
    out, resumed = local_grid["out"], local_grid["resumed"]
    assert local_grid["left"] == [], "Ray processes outlived the sweep"
    assert "4 trials (lr, hidden swept), 1 done in an earlier run; running 3 on this machine" in resumed.stdout
    table = rows(out)
    assert [(r["id"], r["lr"], r["hidden"], r["status"], r["epochs"]) for r in table] == [
        ("000", "0.003", "16", "finished", "2"), ("001", "0.003", "64", "finished", "2"),
        ("002", "0.03", "16", "finished", "2"), ("003", "0.03", "64", "finished", "2")]
    assert json.loads((out / "trials" / "000" / "trial.json").read_text()) == local_grid["first"]  # kept, not rerun
    for row in table:
        metrics = json.loads((out / "trials" / row["id"] / "metrics.json").read_text())
        assert f"{metrics['test_accuracy']:.4f}" == row["test_accuracy"]
        assert f"{max(metrics['history']['val_accuracy']):.4f}" == row["best_val_accuracy"]
        assert (out / "trials" / row["id"] / "model.npz").stat().st_size > 0
        assert float(row["test_accuracy"]) > 0.5
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = resumed.stdout.splitlines()
    assert sum(line.startswith("[") for line in lines) == 3  # one line per trial run, no tables of Ray's
    best = max(table, key=lambda r: float(r["best_val_accuracy"]))
    assert f"best: trial {best['id']} (lr {best['lr']}, hidden {best['hidden']})" in resumed.stdout


@needs_netns
def test_running_a_finished_sweep_again_skips_every_trial(local_grid, tmp_path):
    out, before = local_grid["out"], (local_grid["out"] / "results.csv").read_text()
    start = time.monotonic()
    again = subprocess.run([sys.executable, "-m", "nnscratch", "sweep", local_grid["file"], "--out", out],
                           env=ray_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - start <= 60
    assert "4 done in an earlier run" in again.stdout and "running" not in again.stdout
    assert (out / "results.csv").read_text() == before


@needs_netns
def test_a_ray_cluster_gives_the_same_accuracies_trial_by_trial(local_grid, cluster, netns, tmp_path):
    out = tmp_path / "on-cluster"
    done = run_sweep(netns, tmp_path, local_grid["file"], out, "--address", cluster)
    assert f"running 4 on the Ray cluster at {cluster}" in done.stdout
    assert without_seconds(rows(out)) == without_seconds(rows(local_grid["out"]))
    for trial in ("000", "003"):  # the run folders came home, model included, with the very same weights
        assert (out / "trials" / trial / "model.npz").exists()
        assert (json.loads((out / "trials" / trial / "metrics.json").read_text())["history"]["val_accuracy"] ==
                json.loads((local_grid["out"] / "trials" / trial / "metrics.json").read_text())["history"][
                    "val_accuracy"])


@needs_netns
def test_a_random_search_with_asha_stopping_hopeless_trials_on_the_cluster(cluster, netns, tmp_path):
    # Adam at lr 5 does not diverge but learns nothing (10 % on validation). One trial at a
    # time, so that the first trial to end an epoch (ASHA never stops that one) is the good
    # 000. Which other good trials ASHA lets finish depends on the order of the reports.
    file = write(tmp_path, """
[train]
epochs = 2

[grid]
lr = [0.01, 5.0]

[random]
samples = 2
l2 = { log_uniform = [1e-6, 1e-4] }
activation = { choice = ["sigmoid", "tanh"] }
""")
    done = run_sweep(netns, tmp_path, file, tmp_path / "out", "--address", cluster, "--scheduler", "asha",
                     "--max-concurrent", 1)
    table = rows(tmp_path / "out")
    assert [(r["lr"], float(r["l2"]), r["activation"]) for r in table] == [
        (show(t.params["lr"]), t.params["l2"], t.params["activation"]) for t in read_sweep(file).trials]
    assert all(1e-6 <= float(r["l2"]) <= 1e-4 and r["activation"] in ("sigmoid", "tanh") for r in table)
    good, hopeless = [r for r in table if r["lr"] == "0.01"], [r for r in table if r["lr"] == "5"]
    assert len(good) == len(hopeless) == 2
    assert any((r["status"], r["epochs"]) == ("finished", "2") and float(r["test_accuracy"]) > 0.5 for r in good)
    assert all(r["status"] in ("finished", "stopped") for r in good), good
    assert all(r["status"] == "diverged" or (r["status"], r["epochs"]) == ("stopped", "1") for r in hopeless), table
    assert any(r["status"] == "stopped" for r in hopeless), table  # ASHA did stop a hopeless trial
    for row in hopeless:
        assert row["test_accuracy"] == "" and float(row["best_val_accuracy"] or 0) < 0.3
        assert (tmp_path / "out" / "trials" / row["id"] / "trial.json").exists()
    assert any("(lr 5, " in line and ": stopped by the scheduler after 1 epoch," in line
               for line in done.stdout.splitlines()), done.stdout
    assert (tmp_path / "out" / "sweep.png").stat().st_size > 0
