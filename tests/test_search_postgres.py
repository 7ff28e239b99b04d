"""The multi-host search on a real PostgreSQL server: two `effnet search` workers share one
study through the documented `--storage=postgresql://…` URL, one is killed mid-trial, and its
trial is re-queued by the heartbeat and finished by the other.

The server is Debian's `postgresql` package (`make test-large` installs it), started here on a
Unix socket in a temporary folder, without a TCP port or a system service, and stopped at the
end. Large tier; the default tier checks that an unreachable server is a one-line error.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import effnet

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
GRACE_S = 6  # a killed worker's trial is re-queued after this long without a heartbeat
# the paper's point is also a reference row: 4 candidates, each trained 1 epoch at 32 px
SEARCH = ["--base=lite", "--data=synthetic?train=64&validation=32", "--points=1.2,1.1,1.15",
          "--seeds=1", "--epochs=1", "--resolution=32", "--batch_size=32",
          f"--grace_period={GRACE_S}", "--study=shared"]


def _run(*command, user=None):
    """A server command, as `user` (the server refuses to run as root)."""
    if user:
        command = ("runuser", "-u", user, "--", *command)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on a Unix socket; yields its SQLAlchemy URL (psycopg2 driver)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL is not installed: `make test-large` installs Debian's postgresql "
                    "package (apt-get install postgresql)")
    binaries = os.path.dirname(found[-1])
    # in /tmp itself: the server's user must reach it (pytest's folders are root's alone)
    folder = tempfile.mkdtemp(prefix="effnet-postgres-")
    data, sockets = os.path.join(folder, "data"), os.path.join(folder, "sockets")
    os.mkdir(sockets)
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(folder, user)
        shutil.chown(sockets, user)
    try:
        _run(os.path.join(binaries, "initdb"), "-D", data, "-A", "trust", "-U", "effnet",
             user=user)
        _run(os.path.join(binaries, "pg_ctl"), "-D", data, "-l",
             os.path.join(folder, "server.log"), "-o", f"-k {sockets} -c listen_addresses=''",
             "-w", "start", user=user)
        try:
            yield f"postgresql://effnet@/postgres?host={sockets}"
        finally:
            _run(os.path.join(binaries, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop",
                 user=user)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _trials(url):
    """(state, candidate) of every trial of the shared study, read by Optuna from the server."""
    import optuna

    study = optuna.load_study(study_name="shared", storage=url)
    return [(t.state.name, t.params.get("candidate")) for t in study.get_trials(deepcopy=False)]


@pytest.mark.large  # two workers training the 4 reference rows, one killed: ~65 s of 2 cores
def test_two_workers_share_a_study_on_postgresql_and_survive_a_kill(postgres, tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "effnet")  # the venv's console script
    storage = f"--storage={postgres}"
    workers = {name: subprocess.Popen([exe, "search", *SEARCH, storage,
                                       f"--out={tmp_path / name}"], env=ENV,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True)
               for name in ("first", "second")}
    try:
        # kill the first worker mid-trial: a trial folder of its own without a summary yet
        deadline = time.time() + 300
        while time.time() < deadline:
            running = [d for d in (tmp_path / "first" / "trials").glob("*")
                       if not list(d.rglob("summary.json")) and list(d.rglob("backup"))]
            if running:
                break
            assert workers["first"].poll() is None, workers["first"].stdout.read()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("the first worker never started a trial")
        workers["first"].send_signal(signal.SIGKILL)
        workers["first"].wait()
        killed = running[0].name
        second = workers["second"].communicate(timeout=600)[0]
        assert workers["second"].returncode == 0, second[-3000:]
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    states = _trials(postgres)
    complete = [candidate for state, candidate in states if state == "COMPLETE"]
    assert len(complete) == 4 and len(set(complete)) == 4, states  # each trained once
    assert ("FAIL", killed) in states, states  # the killed trial, failed by the heartbeat
    redone = tmp_path / "second" / "trials" / killed  # ... and finished by the other worker
    assert list(redone.rglob("summary.json")), states
    report = json.loads((tmp_path / "second" / "search.json").read_text())
    assert sorted(row["key"] for row in report["trials"]) == sorted(complete)
    assert report["best"]["val_top1_mean"] == max(r["val_top1_mean"] for r in report["trials"])


def test_an_unreachable_storage_is_a_one_line_error(tmp_path):
    result = effnet("search", *SEARCH, f"--out={tmp_path / 'x'}",
                    "--storage=postgresql://effnet@/postgres?host=/nonexistent", timeout=120)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("effnet search:")]
    assert len(errors) == 1 and errors[0].startswith("effnet search: error: --storage="), (
        result.stderr)
    assert "cannot open it" in errors[0] and "Traceback" not in result.stderr
