"""Training under a tf.distribute strategy (training.train, training.train_msdn).

A multi-GPU node is imitated by splitting this machine's CPU into two logical devices,
which TensorFlow allows only before it first uses the CPU: hence a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from crystal_course import training

SCRIPT = """
import json
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from crystal_course import models, training

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
out = {"replicas": mirrored.num_replicas_in_sync, "default": repr(training.default_strategy())}

# MSDN without dropout or batch norm: nothing random but the data order, which both share.
x = (rng.random((64, 32, 32, 3)) * 255).astype(np.float32)
y = np.arange(64) % 3
for name, strategy, batch in (("single", None, 16), ("mirrored", mirrored, 8),
                              ("single_half_batch", None, 8)):
    model = models.msdn((32, 32, 1), n_classes=3, blocks=(1, 1), growth=4, stem_filters=4,
                        dropout=0.0, batch_norm=False, seed=0)
    history = training.train_msdn(model, x, y, epochs=2, batch_size=batch,
                                  validation_fraction=0.25, seed=0, strategy=strategy)
    out["msdn_" + name] = {k: history.history[k] for k in ("loss", "val_loss")}

# The 2018 CNN, dropout and batch norm included, for one epoch.
x = rng.random((64, 32, 32, 3), dtype=np.float32)
y = np.arange(64) % 2
for name, strategy, batch in (("single", None, 16), ("mirrored", mirrored, 8)):
    model = models.ziletti_cnn((32, 32, 3), n_classes=2, seed=0)
    before = [w.copy() for w in model.get_weights()]
    history = training.train(model, x, y, epochs=1, batch_size=batch, validation_fraction=0,
                             seed=0, verbose=0, strategy=strategy)
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    out["cnn_" + name] = {"loss": history.history["loss"], "changed": changed,
                          "n_weights": len(before),
                          "p": model.predict(x[:4], verbose=0).sum(axis=1).tolist()}
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def runs():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_two_devices_split_each_global_batch(runs):
    assert runs["replicas"] == 2
    # No GPU here: the default strategy ("auto", which every chapter uses) is one device.
    assert runs["default"] == "None"
    single, mirrored = runs["msdn_single"], runs["msdn_mirrored"]
    # 8 per device on 2 devices is the global batch of 16 on one: the same optimisation,
    # up to the order of floating-point sums.
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-2)
    np.testing.assert_allclose(mirrored["val_loss"], single["val_loss"], rtol=1e-3)
    # The tolerance is tight enough to see a different batch: 8 on one device is not it.
    half = runs["msdn_single_half_batch"]
    assert np.max(np.abs(np.subtract(half["loss"], single["loss"])) / single["loss"]) > 2e-2


def test_the_cnn_trains_on_two_devices_and_keeps_its_weights(runs):
    single, mirrored = runs["cnn_single"], runs["cnn_mirrored"]
    # Dropout draws and per-device batch statistics differ; the loss stays close.
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=0.1)
    # The trained weights come back into the caller's model, which still predicts.
    assert mirrored["changed"] == single["changed"] and mirrored["changed"] >= 10
    np.testing.assert_allclose(mirrored["p"], 1.0, rtol=1e-5)


def test_bad_strategies_are_named():
    x, y = np.zeros((4, 64, 64, 3), np.float32), np.zeros(4, int)
    from crystal_course.models import ziletti_cnn

    model = ziletti_cnn(n_classes=2, seed=0)
    with pytest.raises(ValueError, match="strategy must be 'auto', None or"):
        training.train(model, x, y, 1, strategy="mirrored")
    with pytest.raises(TypeError, match="tf.distribute.Strategy, got int"):
        training.train(model, x, y, 1, strategy=2)
