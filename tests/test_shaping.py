"""Chapter 6's package parts: random crystals, shaping, the MSDN."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from crystal_course import models, shaping, structures, training


def test_space_group_sets_are_nested_and_span_the_crystal_systems():
    sets = structures.SPACE_GROUP_SETS
    assert {k: len(v) for k, v in sets.items()} == {8: 8, 20: 20, 49: 49, 72: 72}
    assert sets[8] == (139, 141, 166, 194, 221, 225, 227, 229)  # the 2018 set
    for small, big in [(8, 20), (20, 49), (49, 72)]:
        assert set(sets[small]) <= set(sets[big])
    systems = [structures.crystal_system(g) for g in sets[72]]
    counts = {name: systems.count(name) for name, _, _ in structures.CRYSTAL_SYSTEMS}
    assert counts == {"triclinic": 2, "monoclinic": 12, "orthorhombic": 22, "tetragonal": 13,
                      "trigonal": 6, "hexagonal": 8, "cubic": 9}  # fmt: skip
    assert len(set(systems[:0] + [structures.crystal_system(g) for g in sets[20]])) == 7
    with pytest.raises(ValueError, match="1..230"):
        structures.crystal_system(231)


@pytest.mark.parametrize("group", [2, 14, 62, 139, 148, 194, 225])
def test_random_crystals_are_relabelled_by_spglib(group):
    atoms = structures.random_crystal(group, 3)
    assert atoms.info["space_group"] == group == structures.space_group(atoms)
    assert len(atoms) <= 24
    again = structures.random_crystal(group, 3)
    np.testing.assert_allclose(atoms.positions, again.positions)  # seeded
    # Returned in spglib's standard orientation (a along x).
    np.testing.assert_allclose(atoms.cell[0, 1:], 0, atol=1e-8)


def _four_fold(n=64):
    image = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    rows, cols = np.mgrid[0:n, 0:n]
    for r, angle0, size in [(10, 0.3, 1.2), (17, 0.1, 1.0)]:
        for k in range(4):
            angle = angle0 + k * np.pi / 2
            y, x = c + r * np.sin(angle), c + r * np.cos(angle)
            image = np.maximum(image, 255 * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / size))
    return image


def test_nodes_and_the_distance_rule():
    grid = np.array([[r, c] for r in (10.0, 20.0, 30.0) for c in (10.0, 20.0, 30.0)])
    pairs = shaping.node_pairs(grid, factor=1.7)
    lengths = np.linalg.norm(grid[pairs[:, 0]] - grid[pairs[:, 1]], axis=1)
    # Edges (10) and diagonals (14.1 < 17) are joined; second neighbours (20) are not.
    assert np.allclose(np.unique(np.round(lengths, 3)), [10.0, 14.142])
    assert len(pairs) == 12 + 8
    assert len(shaping.node_pairs(grid, factor=1.3)) == 12
    # A near-duplicate of spot (10, 10) is not joined to it (0.7 px < min_separation);
    # it joins the three spots within 1.7 x the new shortest distance (9.5 px).
    close = np.vstack([grid, grid[:1] + 0.5])
    pairs = shaping.node_pairs(close, 1.7, min_separation=2.0)
    assert [0, 9] not in pairs.tolist() and len(pairs) == 20 + 3
    centres, sizes = shaping.find_nodes(_four_fold())
    assert len(centres) == 8 and (sizes > 0).all()
    assert len(shaping.node_pairs(centres[:1])) == 0


def test_nodes_are_scipys_components_and_centroids():
    # The nodes of a stack are labelled in one pass; each pattern's must be what
    # scipy.ndimage gives it alone: 4-connected components and intensity-weighted centroids.
    from scipy import ndimage

    rng = np.random.default_rng(3)
    for _ in range(20):
        image = _random_spots(rng).astype(np.float32)  # the precision patterns are read in
        image[0, :3] = image[1, 3] = 120  # touches the edge; joins only at a corner
        centres, sizes = shaping.find_nodes(image, threshold=50)
        labels, count = ndimage.label(image >= 50)
        index = np.arange(1, count + 1)
        np.testing.assert_array_equal(centres, ndimage.center_of_mass(image, labels, index))
        np.testing.assert_array_equal(sizes, ndimage.sum_labels(np.ones_like(image), labels,
                                                                index))  # fmt: skip
    blank = shaping.find_nodes(np.zeros((16, 16)))
    assert blank[0].shape == (0, 2) and blank[1].shape == (0,)


def test_shaping_keeps_a_four_fold_axis():
    image = _four_fold()
    shaped = shaping.shape_pattern(image)
    assert shaped.shape == image.shape and shaped.max() <= 255
    assert (shaped > 0).sum() > (image >= 50).sum()  # lines were drawn
    np.testing.assert_allclose(np.rot90(shaped), shaped, atol=1e-3)
    np.testing.assert_allclose(np.rot90(shaped, 2), shaped, atol=1e-3)


def test_shaped_pattern_keeps_the_raw_pattern_and_adds_lines():
    rng = np.random.default_rng(0)
    image = _four_fold() + rng.uniform(0, 40, (64, 64)).astype(np.float32)  # weak pixels too
    image = np.minimum(image, 255).astype(np.float32)
    shaped = shaping.shape_pattern(image)
    assert (shaped >= image).all()  # S = R + lines: nothing of R is removed
    assert (shaped > image + 1).sum() > 50  # the lines
    nodes_only = shaping.shape_pattern(image, background="nodes")
    weak = image < 50
    on_lines = nodes_only > 0
    assert (nodes_only[weak & ~on_lines] == 0).all()  # the ablation deletes weak pixels
    np.testing.assert_allclose(shaped[~(shaped > image)], image[~(shaped > image)])
    with pytest.raises(ValueError, match="background must be one of"):
        shaping.shape_pattern(image, background="none")


def test_shaped_square_net_has_its_edges_and_diagonals():
    # Spots of a square net, 12 px apart: f = 1.7 joins edges (12) and diagonals (17),
    # not second neighbours (24).
    n, step = 64, 12
    rows, cols = np.mgrid[0:n, 0:n]
    image = np.zeros((n, n), np.float32)
    spots = [(r, c) for r in (14, 26, 38, 50) for c in (14, 26, 38, 50)]
    for r, c in spots:
        image = np.maximum(image, 200 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / 1.5))
    image = np.rint(image)
    shaped = shaping.shape_pattern(image)
    centres, _ = shaping.find_nodes(image)
    pairs = shaping.node_pairs(centres)
    lengths = np.unique(np.round(np.linalg.norm(centres[pairs[:, 0]] - centres[pairs[:, 1]],
                                                axis=1), 1))  # fmt: skip
    np.testing.assert_allclose(lengths, [step, step * np.sqrt(2)], atol=0.05)
    assert len(pairs) == 2 * 4 * 3 + 2 * 3 * 3  # 24 edges, 18 diagonals
    assert shaped[14, 20] > 100 and shaped[20, 20] > 100  # an edge and a diagonal midpoint
    assert shaped[14, 20] > image[14, 20] + 100


def test_count_nodes_and_shape_patterns_over_a_batch():
    batch = np.stack([np.stack([_four_fold()] * 3, axis=-1)] * 2)
    assert shaping.count_nodes(batch).tolist() == [[8, 8, 8], [8, 8, 8]]
    shaped = shaping.shape_patterns(batch)
    assert shaped.shape == batch.shape
    np.testing.assert_allclose(shaped[1, ..., 2], shaping.shape_pattern(_four_fold()))
    with pytest.raises(ValueError, match=r"\(n, n, C\)"):
        shaping.shape_patterns(np.zeros((4, 4)))


def _random_spots(rng, n=32):
    """A pattern of 4-12 round spots of random size and brightness, some at the edges."""
    rows, cols = np.mgrid[0:n, 0:n]
    image = np.zeros((n, n), np.float32)
    for _ in range(rng.integers(4, 13)):
        y, x = rng.uniform(-1, n, 2)
        size, peak = rng.uniform(0.5, 3), rng.uniform(40, 255)
        image = np.maximum(image, peak * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / size))
    return image


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"background": "nodes", "threshold": 30},
        {"factor": 1.9, "width": 0.6, "brightness": 0.5},
    ],
)
def test_a_batch_is_shaped_as_each_pattern_alone(kwargs):
    # 60 crystals x 3 patterns: the lines of many patterns are drawn in one pass, in
    # blocks, and every pixel must be what the pattern alone would give.
    rng = np.random.default_rng(7)
    batch = np.stack([np.stack([_random_spots(rng) for _ in range(3)], axis=-1)
                      for _ in range(60)])  # fmt: skip
    batch[10], batch[20, ..., 1] = 0, 0  # patterns without a node among the others
    shaped = shaping.shape_patterns(batch, **kwargs)
    alone = np.stack([np.stack([shaping.shape_pattern(item[..., k], **kwargs) for k in range(3)],
                               axis=-1) for item in batch])  # fmt: skip
    np.testing.assert_array_equal(shaped, alone)
    assert (shaped > batch).mean() > 0.05  # lines were drawn


def test_msdn_batch_norm_is_a_switch():
    kinds = lambda m: {type(x).__name__ for x in m.get_layer("densenet_trunk").layers}  # noqa: E731
    plain = models.msdn((32, 32, 1), 4, blocks=(2,), growth=4, stem_filters=8, batch_norm=False)
    assert "BatchNormalization" not in kinds(plain)  # the paper: conv, ReLU, dropout
    normed = models.msdn((32, 32, 1), 4, blocks=(2,), growth=4, stem_filters=8)
    assert "BatchNormalization" in kinds(normed)


def test_empty_flat_and_bad_patterns():
    np.testing.assert_array_equal(shaping.shape_pattern(np.zeros((32, 32))), 0)
    flat = np.full((32, 32), 200.0)
    np.testing.assert_array_equal(shaping.shape_pattern(flat), flat)  # one node, no lines
    for bad, fragment in [
        (np.zeros((4, 8)), "square"),
        (np.full((8, 8), 300.0), r"\[0, 255\]"),
        (np.full((8, 8), np.nan), "finite"),
        (np.zeros((8, 8, 3)), "2-D"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            shaping.shape_pattern(bad)


def test_msdn_shares_one_trunk_and_sums_the_losses():
    model = models.msdn((32, 32, 1), 4, blocks=(2, 2), growth=4, stem_filters=8, seed=0)
    trunk = model.get_layer("densenet_trunk")
    heads = [model.get_layer(f"logits_{a}") for a in "abc"]
    assert len(model.trainable_weights) == len(trunk.trainable_weights) + 3 * 2
    trunk_ids = {id(v) for v in trunk.trainable_weights}
    assert len(trunk_ids) == len(trunk.trainable_weights)
    assert model.count_params() == trunk.count_params() + sum(h.count_params() for h in heads)
    rng = np.random.default_rng(0)
    shaped = rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    y = np.arange(12) % 4
    history = training.train_msdn(model, shaped, y, epochs=1, batch_size=4, seed=0)
    assert "loss" in history.history
    inputs = models.msdn_inputs(shaped)
    one_hot = np.eye(4, dtype=np.float32)[y]
    result = model.evaluate(inputs, [one_hot] * 3, verbose=0, return_dict=True)
    per_stream = [result[k] for k in sorted(result) if k.endswith("_loss") and k != "loss"]
    assert len(per_stream) == 3
    assert result["loss"] == pytest.approx(sum(per_stream), rel=1e-4)
    probabilities = models.msdn_probabilities(model, inputs)
    logits = model.predict(inputs, verbose=0)
    np.testing.assert_array_equal(probabilities.argmax(1), sum(logits).argmax(1))
    with pytest.raises(ValueError, match="1, 2 or 3 channels"):
        models.msdn_inputs(shaped[..., :2])
    coloured = np.concatenate([shaped] * 3, axis=-1)  # three RGB patterns
    streams = models.msdn_inputs(coloured)
    assert [x.shape for x in streams] == [(12, 32, 32, 3)] * 3
    np.testing.assert_array_equal(streams[1], coloured[..., 3:6] / np.float32(255))


def test_coloured_shapes_keep_lines_and_spots_apart():
    """The paper's encoding: a spot is grey, a line pixel is brighter in its own colour."""
    pattern = np.zeros((32, 32), dtype=np.float32)
    # a square of four joined spots, and one too far away to be joined
    for row, col in [(6, 6), (6, 14), (14, 6), (14, 14), (27, 27)]:
        pattern[row - 1 : row + 2, col - 1 : col + 2] = 200
    spots = np.stack([pattern, pattern.T, np.rot90(pattern)], axis=-1)
    grey = shaping.shape_patterns(spots)
    coloured = shaping.coloured_shapes(spots, grey)
    assert coloured.shape == (32, 32, 9)
    for k, colour in enumerate(shaping.LINE_COLOURS):
        rgb = coloured[..., 3 * k : 3 * k + 3]
        assert (rgb >= spots[..., k : k + 1]).all(), colour  # S >= R in every channel
        line = grey[..., k] > spots[..., k]  # pixels a line brightened
        assert line.any()
        others = [c for c in range(3) if c != k]
        assert (rgb[line][:, k] > rgb[line][:, others].max(axis=1)).all(), colour
        spot = (spots[..., k] >= 50) & ~line  # the lone spot
        assert spot.sum() == 9
        assert (rgb[~line] == rgb[~line][:, :1]).all()  # no line: grey, equal channels
    batch = shaping.coloured_shapes(spots[None].repeat(2, 0), grey[None].repeat(2, 0))
    np.testing.assert_array_equal(batch[1], coloured)
    paired = shaping.paired_shapes(spots, grey)  # the course's: R and S, in every pattern
    assert paired.shape == (32, 32, 6)
    np.testing.assert_array_equal(paired[..., 1::2] - paired[..., 0::2], grey - spots)
    with pytest.raises(ValueError, match=">= spots"):
        shaping.paired_shapes(grey, spots)
    with pytest.raises(ValueError, match=">= spots"):
        shaping.coloured_shapes(grey, spots)
    with pytest.raises(ValueError, match=r"\(\.\.\., n, n, 3\)"):
        shaping.coloured_shapes(spots[..., :2], grey[..., :2])


def test_mc_dropout_spreads_only_with_dropout():
    x = models.msdn_inputs(np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)))
    with_dropout = models.msdn((32, 32, 1), 4, blocks=(2,), growth=4, stem_filters=8,
                               dropout=0.5, seed=0)  # fmt: skip
    mean, std = models.mc_dropout_predict(with_dropout, x, passes=8)
    assert mean.shape == std.shape == (3, 4) and std.max() > 1e-4
    np.testing.assert_allclose(mean.sum(axis=1), 1, rtol=1e-5)
    again, _ = models.mc_dropout_predict(with_dropout, x, passes=8)
    np.testing.assert_allclose(again, mean, rtol=1e-5)  # seeded
    # Dropout is back off afterwards: plain predictions are deterministic.
    first = models.msdn_probabilities(with_dropout, x)
    np.testing.assert_allclose(models.msdn_probabilities(with_dropout, x), first)
    without = models.msdn((32, 32, 1), 4, blocks=(2,), growth=4, stem_filters=8, dropout=0.0)
    _, std0 = models.mc_dropout_predict(without, x, passes=4)
    np.testing.assert_allclose(std0, 0, atol=1e-7)


def test_top_k_accuracy():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    y = np.array([1, 2, 2])
    assert training.top_k_accuracy(p, y, 1) == pytest.approx(1 / 3)
    assert training.top_k_accuracy(p, y, 2) == pytest.approx(2 / 3)
    assert training.top_k_accuracy(p, y, 3) == 1.0
    with pytest.raises(ValueError, match="k must"):
        training.top_k_accuracy(p, y, 4)


def test_msdn_table_accounts_for_every_parameter():
    model = models.msdn((32, 32, 1), 5, blocks=(2, 3), growth=8, stem_filters=8)
    table = models.msdn_table(model)
    assert int(table["parameters"].sum()) == model.count_params()
    assert list(table.index) == ["stem", "dense block 1 (2 layers)", "transition 1",
                                 "dense block 2 (3 layers)", "global average pooling",
                                 "3 linear heads"]  # fmt: skip
    assert table.loc["dense block 1 (2 layers)", "output (h, w, channels)"] == (8, 8, 8 + 2 * 8)
    with pytest.raises(ValueError, match="expected an msdn"):
        models.msdn_table(models.ziletti_cnn((32, 32, 3), 5))


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    """Stops a fit after its first epoch, as an interrupted job would stop."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def test_an_interrupted_msdn_fit_resumes_after_its_last_epoch(tmp_path):
    rng = np.random.default_rng(0)
    shaped = rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    y = np.arange(12) % 4

    def fresh():  # a new process builds the model afresh
        return models.msdn((32, 32, 1), 4, blocks=(1,), growth=4, stem_filters=4, seed=0)

    kwargs = {"epochs": 3, "batch_size": 4, "seed": 0, "resume_dir": tmp_path / "run"}
    stopped = training.train_msdn(fresh(), shaped, y, callbacks=[_StopAfterFirstEpoch()],
                                  **kwargs)  # fmt: skip
    assert len(stopped.history["loss"]) == 1
    resumed_model = fresh()
    resumed = training.train_msdn(resumed_model, shaped, y, **kwargs)
    assert len(resumed.history["loss"]) == 3 and len(resumed.history["val_accuracy"]) == 3
    assert resumed.history["loss"][0] == stopped.history["loss"][0]  # epoch 1 not run again
    fit, _ = training.split_indices(len(y), 0.05, 0)
    steps = 3 * -(-len(fit) // 4)
    assert int(resumed_model.optimizer.iterations) == steps  # the optimizer's state came back
    assert training.resumed_history(tmp_path / "run") == resumed.history
    seconds = json.loads((tmp_path / "run" / training.SECONDS_FILE).read_text())
    assert sorted(seconds) == ["0", "1", "2"]  # each epoch's time, over both restarts
    assert training.resumed_seconds(tmp_path / "run") == pytest.approx(sum(seconds.values()))
    assert training.resumed_seconds(tmp_path / "nothing") is None
    finished = fresh()  # a finished fit started again trains no further
    again = training.train_msdn(finished, shaped, y, **kwargs)
    assert again.history == resumed.history
    for a, b in zip(finished.get_weights(), resumed_model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert training.resumed_history(tmp_path / "nothing") == {}


def test_building_the_training_state_first_saves_a_trace_and_changes_no_bit():
    """The optimizer's slots and loss trackers made before ``fit``: the MSDN's training
    step is traced once instead of twice, and its training is the same to the bit."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    inputs = models.msdn_inputs(rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8))
    one_hot = np.eye(4, dtype=np.float32)[np.arange(12) % 4]
    runs = []
    for build_first in (False, True):
        keras.utils.set_random_seed(0)
        model = models.msdn((32, 32, 1), 4, blocks=(1,), growth=4, stem_filters=4, seed=0)
        traces = []
        step = model.train_step
        model.train_step = lambda data, step=step, traces=traces: traces.append(1) or step(data)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3, weight_decay=1e-7),
            loss=[keras.losses.CategoricalCrossentropy(from_logits=True)] * 3,
        )
        data = tf.data.Dataset.from_tensor_slices((tuple(inputs), (one_hot,) * 3))
        data = data.shuffle(12, seed=0).batch(4)
        if build_first:
            training._build_training_state(model, data)
        history = model.fit(data, epochs=2, verbose=0)
        runs.append((len(traces), history.history, model.get_weights()))
    (traces_plain, history_plain, plain), (traces_built, history_built, built) = runs
    assert (traces_plain, traces_built) == (2, 1)
    assert history_built == history_plain  # the trackers were reset before the first epoch
    for a, b in zip(plain, built, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mc_dropout_samples_are_the_passes_the_summary_reads():
    from crystal_course import uncertainty

    model = models.msdn((32, 32, 1), 3, blocks=(1,), growth=4, stem_filters=4, dropout=0.5,
                        seed=0)  # fmt: skip
    x = models.msdn_inputs(np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)))
    samples = models.mc_dropout_samples(model, x, passes=6, seed=3)
    mean, std = models.mc_dropout_predict(model, x, passes=6, seed=3)
    assert samples.shape == (6, 4, 3)
    np.testing.assert_allclose(samples.mean(axis=0), mean, rtol=1e-6)
    np.testing.assert_allclose(samples.std(axis=0), std, rtol=1e-5, atol=1e-7)
    assert (uncertainty.mutual_information(samples) > 0).all()  # the passes disagree
