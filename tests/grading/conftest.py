"""The chapters run as on Colab's CPU runtime, which has dask but not dask.distributed.

The Colab stack installs the ``cluster`` extra, so that its own tests can run a Dask
cluster; the chapters must not need it. Every kernel these tests start (nbclient's and
otter's) finds a ``distributed`` package first on its path that refuses to import.
"""

from __future__ import annotations

import os

import pytest

BLOCKER = (
    "raise ImportError(\"dask.distributed is not installed on Colab's CPU runtime; "
    'the chapters must not need it")\n'
)


@pytest.fixture(scope="module", autouse=True)
def no_distributed_in_kernels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colab-cpu-path")
    (folder / "distributed").mkdir()
    (folder / "distributed" / "__init__.py").write_text(BLOCKER)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), before]))
    yield folder
    if before is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = before
