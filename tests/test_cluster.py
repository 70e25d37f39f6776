"""Dataset generation on a Dask cluster (crystal_course.cluster): a LocalCluster of 2 workers.

What the cluster path promises: the same seed gives the same bytes as local processes,
a killed worker or a killed client loses and duplicates nothing, and a bad scheduler
address is one clear line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import distributed
import numpy as np
import pytest

from crystal_course import cluster, dataset, zone_axis

# Long enough (about 2 s on 2 workers) that a kill lands while tasks are running.
LONG = dict(n_per_class=80, n_test_per_class=10, vacancies=(), displacements=(), seed=5,
            chunk_size=16)  # fmt: skip
SHORT = dict(n_per_class=3, n_test_per_class=1, n_atoms=40, seed=3, chunk_size=5)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
        distributed.Client(local, set_as_default=False) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The long dataset made by local processes: what every cluster run must reproduce."""
    return dataset.generate(tmp_path_factory.mktemp("local") / "ds", n_jobs=2, progress=False,
                            **LONG)  # fmt: skip


def _checksums(path) -> dict:
    return {name: entry["sha256"] for name, entry in dataset.read_manifest(path)["chunks"].items()}


def _wait_for_chunks(path, at_least: int = 1, timeout: float = 120) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            done = len(dataset.read_manifest(path)["chunks"])
        except (FileNotFoundError, ValueError):  # not written yet
            done = 0
        if done >= at_least:
            return done
        time.sleep(0.01)
    raise AssertionError(f"no chunk of {path} was written in {timeout} s")


def test_a_cluster_run_writes_the_bytes_of_a_local_run(client, tmp_path):
    local = dataset.generate(tmp_path / "local", n_jobs=1, progress=False, **SHORT)
    remote = dataset.generate(tmp_path / "remote", client=client, progress=False, **SHORT)
    assert _checksums(remote) == _checksums(local) and len(_checksums(local)) == 11
    # The whole manifest (parameters, versions, splits) is the same file, byte for byte.
    assert (remote / dataset.MANIFEST).read_bytes() == (local / dataset.MANIFEST).read_bytes()
    np.testing.assert_array_equal(dataset.load(remote, "test_vacancies_0.25").x,
                                  dataset.load(local, "test_vacancies_0.25").x)  # fmt: skip


def test_zone_axis_datasets_too(client, tmp_path):
    config = zone_axis.Config((221, 225), n_per_group=2, n_test_per_group=1, vacancies=(0.1,),
                              n_pixels=32, n_atoms=60, chunk_size=3)  # fmt: skip
    local = zone_axis.generate(tmp_path / "local", config, n_jobs=1, progress=False)
    remote = zone_axis.generate(tmp_path / "remote", config, progress=False, client=client)
    assert _checksums(remote) == _checksums(local)
    assert dataset.read_manifest(remote)["versions"]["pyxtal"]


def test_a_killed_worker_loses_nothing(client, reference, tmp_path):
    target = tmp_path / "ds"
    pids = client.run(os.getpid)
    errors = []

    def run():
        try:
            dataset.generate(target, client=client, progress=False, **LONG)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    done = _wait_for_chunks(target)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)  # the worker dies mid-task; its nanny starts a new one
    thread.join(timeout=300)
    assert not thread.is_alive() and not errors, errors
    total = len(_checksums(reference))
    assert done < total, "the worker was killed after the run had finished"
    assert _checksums(target) == _checksums(reference)
    assert victim not in client.run(os.getpid).values()
    assert not list(target.glob(".*.tmp"))


def _cli(target, *extra):
    args = [sys.executable, "-m", "crystal_course.dataset", "generate", str(target),
            "--n-per-class", str(LONG["n_per_class"]), "--n-test-per-class",
            str(LONG["n_test_per_class"]), "--vacancies", "--displacements", "--seed",
            str(LONG["seed"]), "--chunk-size", str(LONG["chunk_size"]), "--no-progress",
            *extra]  # fmt: skip
    return args


def test_a_killed_client_resumes_without_loss_or_duplication(client, reference, tmp_path):
    target = tmp_path / "ds"
    address = client.scheduler.address
    process = subprocess.Popen(_cli(target, "--scheduler", address),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        done = _wait_for_chunks(target)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate()
    kept = dataset.read_manifest(target)["chunks"]
    assert 1 <= done <= len(kept) < len(_checksums(reference)), stderr.decode()[-2000:]
    mtimes = {name: os.path.getmtime(target / name) for name in kept}
    # A new client (here the command line again) finishes the job.
    finished = subprocess.run(_cli(target, "--scheduler", address), capture_output=True,
                              text=True)  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert _checksums(target) == _checksums(reference)
    for name, mtime in mtimes.items():
        assert os.path.getmtime(target / name) == mtime  # finished chunks are not redone
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted([dataset.MANIFEST, *_checksums(reference)])  # nothing stray


@pytest.mark.parametrize(
    "address, fragment",
    [
        ("tcp://127.0.0.1:1", "no Dask scheduler answered at 'tcp://127.0.0.1:1'"),
        ("nonsense", "'nonsense' is not a Dask scheduler address (missing port"),
        ("http://localhost:8786", "unknown scheme 'http'"),
    ],
)
def test_a_bad_scheduler_address_is_named(address, fragment):
    with pytest.raises(ConnectionError) as error:
        cluster.connect(address, timeout=1)
    assert fragment in str(error.value)


def test_the_command_line_answers_a_bad_scheduler_in_one_line(tmp_path):
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    result = subprocess.run(_cli(tmp_path / "ds", "--scheduler", "tcp://127.0.0.1:1"),
                            capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m crystal_course.dataset generate: error: no Dask scheduler")
    assert "within 1 s" in last
    assert not (tmp_path / "ds").exists()  # nothing is written before the cluster answers


def test_workers_are_checked_for_the_clients_versions(client, tmp_path):
    assert cluster.check_workers(client, ["numpy", "pyxtal"]) == 2
    here = cluster.versions(["numpy"])
    assert set(here) == {"crystal_course", "numpy"} and here["numpy"] == np.__version__
    # A third worker whose environment reports another spglib: its own site directory
    # comes first on its path and holds that version's package metadata.
    site = tmp_path / "site"
    meta = site / "spglib-0.1.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: spglib\nVersion: 0.1\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                               client.scheduler.address, "--nthreads", "1", "--no-nanny",
                               "--name", "odd-one"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        client.wait_for_workers(3, timeout=60)
        with pytest.raises(RuntimeError, match=r"worker tcp://\S+ has other versions than this "
                           r"client: spglib 0.1 \(client: "):  # fmt: skip
            cluster.check_workers(client)
        with pytest.raises(RuntimeError, match="spglib 0.1"):
            dataset.generate(tmp_path / "ds", client=client, progress=False, **SHORT)
        assert not list((tmp_path / "ds").glob("*.npz"))  # refused before any work
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        deadline = time.time() + 60
        while len(client.scheduler_info()["workers"]) > 2 and time.time() < deadline:
            time.sleep(0.1)


def test_map_unordered_gives_every_result_once(client):
    tasks = [(i,) for i in range(20)]
    for where in ({"client": client}, {"n_jobs": 2}, {"n_jobs": 1}):
        results = dict(cluster.map_unordered(abs, [(-i,) for (i,) in tasks], **where))
        assert results == {i: i for i in range(20)}
    with pytest.raises(TypeError, match="distributed.Client"):
        list(cluster.map_unordered(abs, tasks, client="tcp://127.0.0.1:8786"))
    with pytest.raises(ValueError, match="n_jobs"):
        list(cluster.map_unordered(abs, tasks, n_jobs=0))
