"""Shared fixtures for the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def root() -> Path:
    """The repository root."""
    return ROOT


COLAB_TAG = "colab-install"


def pytest_collection_modifyitems(config, items):
    """Deselect the chapters' Colab install cells from nbval.

    That cell only acts on Colab (its behaviour elsewhere is unit-tested in
    test_notebooks.py), so it is not a test here; deselecting it keeps the run
    free of skipped tests. ``make test`` collects ``tests`` and ``book``
    together, so this hook sees the notebook cells.
    """
    keep, drop = [], []
    for item in items:
        cell = getattr(item, "cell", None)
        tags = cell.get("metadata", {}).get("tags", []) if cell is not None else []
        (drop if COLAB_TAG in tags else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def zone_card(methods: dict, variant: str = "") -> dict:
    """A Chapter 6 results card with 20-group runs: ``(inputs, model)`` -> one list of
    per-crystal verdicts (True: right) per seed, in seed order."""
    runs = []
    for (inputs, model), seeds in methods.items():
        for seed, right in enumerate(seeds):
            predicted = [0 if r else 1 for r in right]
            runs.append({"n_groups": 20, "inputs": inputs, "model": model, "variant": variant,
                         "seed": seed, "y": {"test_pristine": [0] * len(right)},
                         "predicted": {"test_pristine": predicted}})  # fmt: skip
    return {"runs": runs}
