"""Response maps and their peak-overlap score (crystal_course.explain)."""

from __future__ import annotations

import numpy as np
import pytest

from crystal_course import explain
from crystal_course.diffraction import fingerprint
from crystal_course.models import load_pretrained, ziletti_cnn
from crystal_course.structures import reference_structure


@pytest.fixture(scope="module")
def shipped():
    return load_pretrained()


@pytest.fixture(scope="module")
def fcc():
    return fingerprint(reference_structure(225))


def test_activations_match_the_layer_outputs(shipped, fcc):
    acts = explain.activations(shipped, fcc, ["conv1", "pool1", "conv6", "softmax"])
    assert list(acts) == ["conv1", "pool1", "conv6", "softmax"]
    for name, value in acts.items():
        assert value.shape == (1, *shipped.get_layer(name).output.shape[1:])
    np.testing.assert_allclose(acts["softmax"], shipped.predict(fcc[None], verbose=0), rtol=1e-5)
    batch = explain.activations(shipped, np.stack([fcc, fcc]), ["conv2"])
    assert batch["conv2"].shape == (2, 64, 64, 32)
    everything = explain.activations(shipped, fcc)
    assert "fingerprint" not in everything and "softmax" in everything
    assert explain.conv_layers(shipped) == [f"conv{i}" for i in range(1, 7)]


def test_attentive_maps_have_input_shape_and_structure(shipped, fcc):
    maps, filters = explain.attentive_response_maps(shipped, fcc, "conv3", n_filters=3)
    assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
    assert len(set(filters.tolist())) == 3 and filters.max() < 16
    for m in maps:
        assert m.min() >= 0 and m.max() == pytest.approx(1.0) and m.std() > 0.01
    # The dominant filters are the ones with the largest mean activation.
    mean = explain.activations(shipped, fcc, ["conv3"])["conv3"][0].mean(axis=(0, 1))
    assert filters.tolist() == np.argsort(-mean, kind="stable")[:3].tolist()


def test_deconvnet_back_projects_through_transposed_kernels():
    """One conv layer, one filter, no ReLU in the way: the map is the correlation's adjoint."""
    import keras

    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(1, 3, padding="same", activation="linear", use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((3, 3, 1, 1), np.float32)
    kernel[1, 2, 0, 0] = 1.0  # output(i, j) = input(i, j + 1)
    conv.set_weights([kernel])
    x = np.zeros((8, 8, 1), np.float32)
    x[4, 5, 0] = 1.0
    maps, _ = explain.attentive_response_maps(model, x, conv.name, n_filters=1)
    # The feature map lights (4, 4); back-projected it lands on the input pixel (4, 5).
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (4, 5)
    assert maps[0].sum() == pytest.approx(1.0)


def test_saliency_and_grad_cam(shipped, fcc):
    for view in (explain.saliency(shipped, fcc), explain.grad_cam(shipped, fcc, "conv6")):
        assert view.shape == (64, 64) and view.min() >= 0 and view.max() == pytest.approx(1.0)
    other = explain.saliency(shipped, fcc, class_index=0)
    assert not np.allclose(other, explain.saliency(shipped, fcc))
    with pytest.raises(ValueError, match="class_index"):
        explain.saliency(shipped, fcc, class_index=7)


def test_gradient_views_differentiate_the_class_score_not_the_probability(shipped, fcc):
    import keras
    import tensorflow as tf

    # The same network with a linear last layer: its outputs are the class scores.
    config = shipped.get_config()
    config["layers"][-1]["config"]["activation"] = "linear"
    scores_model = keras.Model.from_config(config)
    scores_model.set_weights(shipped.get_weights())
    image = tf.constant(fcc[None])
    c = int(shipped.predict(fcc[None], verbose=0).argmax())
    with tf.GradientTape() as tape:
        tape.watch(image)
        score = scores_model(image, training=False)[0, c]
    expected = np.abs(tape.gradient(score, image)[0].numpy()).max(axis=-1)
    np.testing.assert_allclose(
        explain.saliency(shipped, fcc), expected / expected.max(), rtol=1e-4, atol=1e-6
    )
    # Why: the shipped model is sure of this crystal, so the probability has saturated.
    with tf.GradientTape() as tape:
        tape.watch(image)
        probability = shipped(image, training=False)[0, c]
    assert float(probability) > 0.99
    softmax_grad = np.abs(tape.gradient(probability, image).numpy()).max()
    assert softmax_grad < 0.01 * expected.max()


def test_gradient_views_need_a_softmax_head(fcc):
    import keras

    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="softmax"):
        explain.saliency(model, fcc, class_index=0)


def test_peak_overlap_is_chance_for_random_maps_and_high_on_the_peaks(fcc):
    from crystal_course.diffraction import ring_mask

    peaks = explain.peak_mask(fcc)
    ring = ring_mask(64)
    assert not (peaks & ~ring).any()  # every peak lies inside the ring
    assert 0 < peaks[ring].mean() < 0.2
    on_peaks = explain.peak_overlap(peaks.astype(float), fcc)
    assert on_peaks == pytest.approx(1 / peaks[ring].mean())
    rng = np.random.default_rng(0)
    random_scores = [explain.peak_overlap(rng.random((64, 64)), fcc) for _ in range(20)]
    assert np.mean(random_scores) == pytest.approx(1.0, abs=0.05)
    assert explain.peak_overlap(np.ones((64, 64)), fcc) == pytest.approx(1.0)
    assert explain.peak_overlap((~peaks).astype(float), fcc) == 0.0
    baseline = explain.shuffled_overlap(peaks.astype(float), fcc, n_shuffles=10, rng=1)
    assert baseline.shape == (10,) and baseline.mean() == pytest.approx(1.0, abs=0.3)


def test_a_peak_blind_map_inside_the_ring_scores_chance(fcc):
    """The null is computed where the peaks can be: inside the ring."""
    from crystal_course.diffraction import ring_mask

    ring = ring_mask(64).astype(float)
    assert explain.peak_overlap(ring, fcc) == pytest.approx(1.0)
    # Over the whole image the same blind map would look like a peak detector.
    whole = np.ones((64, 64), bool)
    assert explain.peak_overlap(ring, fcc, region=whole) > 1.5
    shuffled = explain.shuffled_overlap(ring, fcc, n_shuffles=5, rng=0)
    np.testing.assert_allclose(shuffled, 1.0)
    with pytest.raises(ValueError, match="region must be"):
        explain.peak_overlap(ring, fcc, region=np.ones((32, 32), bool))
    with pytest.raises(ValueError, match="in the region"):
        explain.peak_overlap(1 - ring, fcc)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda m, x: explain.attentive_response_maps(m, x, "conv9"), "unknown layer"),
        (lambda m, x: explain.attentive_response_maps(m, x, "pool1"), "not a Conv2D"),
        (lambda m, x: explain.attentive_response_maps(m, x, "dense"), "conv1, conv2"),
        (lambda m, x: explain.attentive_response_maps(m, x, "conv6", 9), "n_filters"),
        (lambda m, x: explain.attentive_response_maps(m, np.stack([x, x]), "conv1"), "one image"),
        (lambda m, x: explain.grad_cam(m, x, "flatten"), "not a Conv2D"),
        (lambda m, x: explain.activations(m, x, ["nope"]), "unknown layer"),
        (lambda m, x: explain.activations(m, x[..., 0]), "shape"),
        (lambda m, x: explain.peak_overlap(np.ones((32, 32)), x), "like the fingerprint"),
        (lambda m, x: explain.peak_overlap(np.zeros((64, 64)), x), "non-zero"),
        (lambda m, x: explain.peak_mask(np.zeros((64, 64, 3))), "positive"),
    ],
)
def test_bad_input_gets_clear_errors(shipped, fcc, call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call(shipped, fcc)


def test_untrained_networks_work_too():
    maps, _ = explain.attentive_response_maps(ziletti_cnn(seed=0), np.ones((64, 64, 3)), "conv6")
    assert maps.shape == (4, 64, 64)


def test_overlap_table_and_figure(shipped, fcc):
    import matplotlib

    matplotlib.use("Agg")
    x = np.stack([fcc, fingerprint(reference_structure(229))])
    table = explain.overlap_table(
        {"shipped": shipped}, x, ["conv1", "conv6"], n_filters=2, n_shuffles=3, progress=False
    )
    assert list(table.index) == ["conv1", "conv6"]
    assert list(table.columns) == ["shipped", "shuffled baseline"]
    assert (table["shipped"] > 1.5).all()  # trained maps sit on the peaks
    assert np.allclose(table["shuffled baseline"], 1, atol=0.25)
    again = explain.overlap_table(
        {"shipped": shipped}, x, ["conv1", "conv6"], n_filters=2, n_shuffles=3, progress=False
    )
    assert table.equals(again)  # seeded
    fig = explain.plot_response_maps(x, np.zeros((1, 2, 64, 64)), ["fcc", "bcc"], ["conv1"])
    assert len(fig.axes) == 3  # two panels and the colour bar
    with pytest.raises(ValueError, match="row labels"):
        explain.plot_response_maps(x, np.zeros((1, 2, 64, 64)), ["fcc"], ["conv1"])
    with pytest.raises(TypeError, match="dict"):
        explain.overlap_table(shipped, x)


def test_gradient_overlaps_score_every_view_and_model_per_crystal(shipped, fcc):
    bcc = fingerprint(reference_structure(229, n_atoms=64))
    x = np.stack([fcc, bcc, fcc])
    models = {"trained": shipped, "untrained": ziletti_cnn(seed=0)}
    table, crystals = explain.gradient_overlaps(models, x)
    assert list(table["view"]) == ["saliency", "saliency", "Grad-CAM", "Grad-CAM"]
    assert set(crystals) == set(explain.GRADIENT_VIEWS)
    for view, by_model in crystals.items():
        for name, scores in by_model.items():
            row = table[(table["view"] == view) & (table["model"] == name)].iloc[0]
            assert scores.shape == (3,) and row["n"] == np.isfinite(scores).sum()
            if row["n"] >= 2:
                assert row["low"] <= row["mean"] <= row["high"]
                np.testing.assert_allclose(row["mean"], np.nanmean(scores))
    # The same fingerprint twice gets the same score: a deterministic map.
    assert crystals["saliency"]["trained"][0] == crystals["saliency"]["trained"][2]
    with pytest.raises(TypeError, match="dict"):
        explain.gradient_overlaps(shipped, x)
    with pytest.raises(ValueError, match="batch"):
        explain.gradient_overlaps(models, fcc)
