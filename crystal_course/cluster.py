"""Running the course's work beyond one process: local processes or a Dask cluster.

The dataset generators (:func:`crystal_course.dataset.generate`,
:func:`crystal_course.zone_axis.generate`) cut their work into small tasks and
hand them to :func:`map_unordered`. Without a Dask client the tasks run in local
processes (joblib); with one, they run on the cluster's workers as Dask futures.
Either way the caller gets every result back in the process that called it, which
alone writes files: workers compute, they never touch the dataset directory.

Dask is an optional dependency (``pip install "crystal_course[cluster]"``). A
cluster can be a :class:`distributed.LocalCluster` on one machine, a Slurm or PBS
allocation through dask-jobqueue, or any scheduler reachable by address
(:func:`connect`). Every worker needs the course installed, at the same versions as
the client (:func:`check_workers`), so that the same seed gives the same bytes.

Introduced in the appendix "Running at scale".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from numbers import Integral
from typing import Any

CLUSTER_EXTRA = 'pip install "crystal_course[cluster]"'


def _distributed():
    try:
        import distributed
    except ImportError as error:  # pragma: no cover - the test stacks install the extra
        raise ImportError(
            f"running on a Dask cluster needs dask.distributed: {CLUSTER_EXTRA}"
        ) from error
    return distributed


def connect(address: str, timeout: float | None = None):
    """A :class:`distributed.Client` connected to the Dask scheduler at ``address``.

    Parameters
    ----------
    address : str
        The scheduler's address as ``dask scheduler`` prints it, e.g.
        ``"tcp://10.0.0.5:8786"`` (``"10.0.0.5:8786"`` means the same).
    timeout : float, optional
        Seconds to wait for the scheduler; default Dask's
        ``distributed.comm.timeouts.connect`` setting (30 s unless configured,
        e.g. by the environment variable ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``).

    Returns
    -------
    distributed.Client

    Raises
    ------
    ConnectionError
        If the address is malformed, or no scheduler answers there in time; the
        message names the address.

    Notes
    -----
    Introduced in the appendix "Running at scale".
    """
    distributed = _distributed()
    from dask.config import get as setting
    from dask.utils import parse_timedelta
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    example = "expected e.g. tcp://10.0.0.5:8786"
    try:
        if not isinstance(address, str):
            raise ValueError(f"not a string: {type(address).__name__}")
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}, not one of {sorted(backends)}")
        if scheme == "tcp":
            parse_host_port(location)
    except ValueError as error:
        raise ConnectionError(
            f"{address!r} is not a Dask scheduler address ({error}); {example}"
        ) from None
    if timeout is None:
        timeout = parse_timedelta(setting("distributed.comm.timeouts.connect"), "s")
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConnectionError(
            f"no Dask scheduler answered at {address!r} within {timeout:g} s ({reason}); "
            "start one with 'dask scheduler' and pass the address it prints"
        ) from None


def versions(packages: Sequence[str] = ("numpy", "ase", "spglib")) -> dict[str, str]:
    """Installed versions of the course and of ``packages`` (distribution names).

    The dataset manifests record them; :func:`check_workers` compares them.

    Notes
    -----
    Introduced in Chapter 2.
    """
    from importlib.metadata import version

    from crystal_course import __version__

    return {"crystal_course": __version__, **{name: version(name) for name in packages}}


def check_workers(client, packages: Sequence[str] = ("numpy", "ase", "spglib")) -> int:
    """Check that every worker of ``client`` runs the client's versions of the course.

    Parameters
    ----------
    client : distributed.Client
    packages : sequence of str
        Packages whose versions decide the result (see :func:`versions`).

    Returns
    -------
    int
        Number of workers checked (workers that join later are not).

    Raises
    ------
    RuntimeError
        If a worker cannot import the course, or has another version of the course or
        of ``packages``; the message names the worker and the package.

    Notes
    -----
    Introduced in the appendix "Running at scale".
    """
    here = versions(packages)
    try:
        there = client.run(versions, packages)
    except ImportError as error:
        raise RuntimeError(
            f"a Dask worker cannot import the course ({error}); install crystal_course "
            "on every worker, at the client's version"
        ) from None
    for worker, theirs in there.items():
        differ = {k: (v, theirs.get(k)) for k, v in here.items() if theirs.get(k) != v}
        if differ:
            listed = ", ".join(f"{k} {b} (client: {a})" for k, (a, b) in differ.items())
            raise RuntimeError(
                f"Dask worker {worker} has other versions than this client: {listed}; "
                "the same seed would not give the same data"
            )
    return len(there)


def local_processes(n_jobs: int | None) -> int:
    """``n_jobs`` checked to be a positive number of processes; ``None`` means all cores.

    Raises
    ------
    ValueError
        If ``n_jobs`` is not a positive integer.

    Notes
    -----
    Introduced in Chapter 2.
    """
    if n_jobs is None:
        return os.cpu_count() or 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, Integral) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive number of processes, got {n_jobs!r}")
    return int(n_jobs)


def _indexed(index: int, func: Callable, args: tuple) -> tuple[int, Any]:
    return index, func(*args)


def map_unordered(
    func: Callable,
    tasks: Sequence[tuple],
    *,
    client=None,
    n_jobs: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``func(*task)`` for every task; yield ``(task index, result)`` as each finishes.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it by name).
    tasks : sequence of tuple
        Positional arguments of each call.
    client : distributed.Client, optional
        Run on this Dask cluster. A task whose worker dies is run again by Dask
        on another worker. Stopping the iteration early cancels what is left.
    n_jobs : int, optional
        Without ``client``: local worker processes (default: all cores; 1 runs in
        this process).

    Yields
    ------
    (int, object)
        The task's index in ``tasks`` and ``func``'s result, in order of completion.

    Notes
    -----
    Introduced in the appendix "Running at scale".
    """
    if client is not None:
        yield from _on_dask(client, func, tasks)
        return
    n_jobs = local_processes(n_jobs)
    if n_jobs == 1 or len(tasks) <= 1:
        for index, args in enumerate(tasks):
            yield index, func(*args)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=min(n_jobs, len(tasks)), return_as="generator_unordered")
    yield from parallel(delayed(_indexed)(i, func, args) for i, args in enumerate(tasks))


def _on_dask(client, func: Callable, tasks: Iterable[tuple]) -> Iterator[tuple[int, Any]]:
    distributed = _distributed()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    futures = [client.submit(func, *args, pure=False) for args in tasks]
    index = {future.key: i for i, future in enumerate(futures)}
    try:
        for future, result in distributed.as_completed(
            futures, loop=client.loop, with_results=True
        ):
            i = index[future.key]
            futures[i] = None  # the cluster may forget a result once it has been handed over
            yield i, result
    finally:
        left = [f for f in futures if f is not None]
        if left:
            client.cancel(left)
