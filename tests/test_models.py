"""The 2018 CNN, its training and evaluation (crystal_course.models, crystal_course.training)."""

from __future__ import annotations

import numpy as np
import pytest

from crystal_course import models, training
from crystal_course.diffraction import fingerprints
from crystal_course.models import ziletti_cnn
from crystal_course.structures import sample_structure


def test_architecture_is_table_1():
    model = ziletti_cnn()
    assert model.count_params() == 365_719  # "about 366k" in the paper
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 7)
    convs = [model.get_layer(f"conv{i}") for i in range(1, 7)]
    assert [c.filters for c in convs] == [32, 32, 16, 16, 8, 8]
    assert all(c.kernel_size == (7, 7) and c.padding == "same" for c in convs)
    # Every conv and dense layer has its non-linearity (the public reproduction had none).
    assert all(c.activation.__name__ == "relu" for c in convs)
    assert model.get_layer("dense").activation.__name__ == "relu"
    assert model.get_layer("softmax").activation.__name__ == "softmax"
    assert model.get_layer("dropout").rate == 0.25
    names = [layer.name for layer in model.layers]
    assert names.index("dense") < names.index("batchnorm") < names.index("softmax")


def test_kernel_size_and_classes_change_the_parameter_count():
    assert ziletti_cnn(kernel_size=3).count_params() < ziletti_cnn().count_params()
    assert ziletti_cnn(n_classes=8).count_params() == 365_719 + 129
    for bad in [dict(input_shape=(3, 64, 64)), dict(input_shape=(64, 64)), dict(n_classes=1)]:
        with pytest.raises(ValueError):
            ziletti_cnn(**bad)


def test_validation_split_is_random_disjoint_and_complete():
    fit, val = training.split_indices(100, 0.05, seed=0)
    assert len(val) == 5 and len(fit) == 95
    assert sorted(np.concatenate([fit, val])) == list(range(100))
    assert set(val) != set(range(95, 100))  # not the tail, as Keras' validation_split is
    again, _ = training.split_indices(100, 0.05, seed=0)
    np.testing.assert_array_equal(again, fit)
    with pytest.raises(ValueError, match="validation_fraction"):
        training.split_indices(10, 1.0, 0)


def test_batches_are_one_hot_and_complete():
    x = np.random.default_rng(0).random((10, 64, 64, 3), dtype=np.float32)
    y = np.array([0, 1, 2] * 3 + [1])
    batches = list(training.batches(x, y, n_classes=3, batch_size=4, shuffle_seed=1))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    labels = np.concatenate([b[1].numpy() for b in batches])
    assert labels.shape == (10, 3) and (labels.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(np.sort(labels.argmax(1)), np.sort(y))


@pytest.fixture(scope="module")
def fcc_bcc():
    """A real two-class problem: 24 fcc and 24 bcc fingerprints from the pipeline."""
    rng = np.random.default_rng(0)
    atoms = [sample_structure(g, rng, n_atoms=120) for g in (225, 229) for _ in range(24)]
    x = fingerprints(atoms, progress=False)
    y = np.repeat([0, 1], 24)
    return x, y


def test_a_tiny_training_run_learns(fcc_bcc):
    x, y = fcc_bcc
    model = ziletti_cnn(n_classes=2, seed=0)
    history = training.train(
        model, x, y, epochs=4, batch_size=8, validation_fraction=0.25, seed=0, verbose=0
    )
    loss = history.history["loss"]
    assert loss[-1] < loss[0]
    assert "val_accuracy" in history.history  # validated on held-out structures
    accuracy, confusion = training.evaluate(model, x, y)
    assert accuracy >= 0.9, confusion
    assert confusion.sum() == len(y) and confusion.shape == (2, 2)


def test_evaluate_and_train_reject_wrong_shapes():
    model = ziletti_cnn(n_classes=2)
    with pytest.raises(ValueError, match="channels first"):
        training.evaluate(model, np.zeros((2, 3, 64, 64), np.float32), np.zeros(2, int))
    with pytest.raises(ValueError, match="integer labels"):
        training.evaluate(model, np.zeros((2, 64, 64, 3), np.float32), np.array([0, 5]))
    with pytest.raises(ValueError, match="shape"):
        training.train(model, np.zeros((2, 32, 32, 3), np.float32), np.zeros(2, int), epochs=1)


def test_non_finite_inputs_outputs_and_losses_are_refused():
    model = ziletti_cnn(n_classes=2, seed=0)
    x = np.zeros((4, 64, 64, 3), np.float32)
    y = np.array([0, 1, 0, 1])
    bad = x.copy()
    bad[2, 5, 5, 1] = np.nan  # one pixel
    with pytest.raises(ValueError, match="non-finite.*first in row 2"):
        training.train(model, bad, y, epochs=1, verbose=0, strategy=None)
    with pytest.raises(ValueError, match="non-finite"):
        training.evaluate(model, bad, y)
    # NaN probabilities are not "class 0": refused, whatever the labels.
    with pytest.raises(ValueError, match="non-finite"):
        training.top_k_accuracy(np.full((2, 3), np.nan), np.array([0, 0]))
    with pytest.raises(ValueError, match="integer labels"):
        training.top_k_accuracy(np.eye(3), np.array([0.0, 1.0, 2.0]))
    # A model whose weights hold NaN answers NaN: evaluate says so instead of scoring it.
    broken = ziletti_cnn(n_classes=2, seed=0)
    broken.set_weights([np.full_like(w, np.nan) for w in broken.get_weights()])
    with pytest.raises(ValueError, match="model's outputs"):
        training.evaluate(broken, x, y)
    # A diverging run stops at the first non-finite loss, with a message.
    noise = np.random.default_rng(0).random((8, 64, 64, 3)).astype(np.float32)
    with pytest.raises(FloatingPointError, match="epoch 1: the loss became nan"):
        training.train(model, noise, np.tile(y, 2), epochs=3, batch_size=2, learning_rate=1e30,
                       verbose=0, strategy=None)  # fmt: skip


def _saved(tmp_path, **card):
    model = ziletti_cnn(n_classes=3, seed=2)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    architecture = {"builder": "ziletti_cnn", "n_classes": 3}
    path = training.save_model(
        model, tmp_path / "m.weights.h5", {"epochs": 1, "architecture": architecture, **card}
    )
    return model, path


def test_save_and_load_round_trip(tmp_path):
    import json

    model, path = _saved(tmp_path)
    assert path.name == "m.weights.h5" and path.stat().st_size < 2_000_000  # no optimiser state
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["epochs"] == 1 and card["architecture"]["n_classes"] == 3
    assert np.asarray(card["self_check"]).shape == (2, 3)
    assert card["precision"] == {"training": "float32", "self_check": "float32"}
    loaded = models.load(path)
    x = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_a_model_trained_in_mixed_precision_loads_where_a_gpu_is_visible(tmp_path, monkeypatch):
    """As on a Colab GPU runtime: the builders choose float16, loading must not."""
    import json

    from crystal_course import config

    monkeypatch.setattr(config, "gpu_names", lambda: ("/physical_device:GPU:0",))
    model = ziletti_cnn(n_classes=3, seed=2)  # mixed precision, chosen by the "GPU"
    assert model.get_layer("conv1").compute_dtype == "float16"
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    architecture = {"builder": "ziletti_cnn", "n_classes": 3}
    path = training.save_model(model, tmp_path / "m.weights.h5", {"architecture": architecture})
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["precision"] == {"training": "mixed_float16", "self_check": "float32"}
    assert "mixed_precision" not in card["architecture"]  # what load() rebuilds from
    loaded = models.load(path)  # its self-check passes at the float32 tolerance
    assert loaded.get_layer("conv1").compute_dtype == "float32"
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_float16"):
        models.build(card["architecture"], precision="bfloat16")


def test_save_model_refuses_what_it_could_not_load(tmp_path):
    model = ziletti_cnn(n_classes=3, seed=2)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        training.save_model(model, tmp_path / "m.keras", {"architecture": {"builder": "x"}})
    with pytest.raises(ValueError, match="architecture"):
        training.save_model(model, tmp_path / "m.weights.h5", {"epochs": 1})
    with pytest.raises(ValueError, match="does not fit"):
        training.save_model(
            model, tmp_path / "m.weights.h5", {"architecture": {"builder": "ziletti_cnn"}}
        )
    with pytest.raises(ValueError, match="one of ziletti_cnn"):
        models.build({"builder": "resnet"})
    assert not list(tmp_path.iterdir())


def test_load_names_the_file_and_the_keras_version_when_it_cannot(tmp_path):
    import json

    import keras

    _, path = _saved(tmp_path)
    card_file = tmp_path / "m.json"
    card = json.loads(card_file.read_text())
    # Outputs that the weights do not reproduce: a wrong or damaged file.
    card_file.write_text(json.dumps({**card, "self_check": [[1, 0, 0], [1, 0, 0]]}))
    with pytest.raises(RuntimeError, match=f"m.weights.h5.*Keras {keras.__version__}.*m.json"):
        models.load(path)
    # Weights of another architecture.
    card_file.write_text(json.dumps({**card, "architecture": {"builder": "ziletti_cnn"}}))
    expected = f"cannot load .*m.weights.h5.*Keras {keras.__version__}"
    with pytest.raises(RuntimeError, match=expected):
        models.load(path)
    card_file.unlink()
    with pytest.raises(FileNotFoundError, match="m.json"):
        models.load(path)


def test_unknown_pretrained_model():
    with pytest.raises(ValueError, match="available: ziletti_cnn"):
        models.load_pretrained("resnet")


def test_mixed_precision_computes_in_float16_but_answers_in_float32():
    model = ziletti_cnn(mixed_precision=True, seed=0)
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("conv1").variable_dtype == "float32"
    assert model.get_layer("softmax").compute_dtype == "float32"
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    out = model.predict(x, verbose=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-3)
    # Default on a machine without a GPU (like CI): plain float32.
    assert ziletti_cnn().get_layer("conv1").compute_dtype == "float32"


def test_plots_label_their_axes():
    import matplotlib

    matplotlib.use("Agg")
    history = {
        "loss": [1.0, 0.5],
        "val_loss": [1.1, 0.6],
        "accuracy": [0.5, 0.9],
        "val_accuracy": [0.4, 0.8],
    }
    loss_ax, acc_ax = training.plot_history(history)
    assert loss_ax.get_xlabel() == "epoch" and "loss" in loss_ax.get_ylabel()
    assert len(acc_ax.get_lines()) == 2
    ax = training.plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], title="t")
    assert "87.5 %" in ax.get_title() and ax.get_xlabel() == "predicted class"
    with pytest.raises(ValueError, match="confusion"):
        training.plot_confusion(np.zeros((3, 3)), ["a", "b"])


def _training_error(*argv) -> tuple[int, str]:
    """Exit code and last line of stderr of the training command line, run in this process."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        training.main(list(argv))
    return stop.value.code, err.getvalue().strip().splitlines()[-1]


def test_the_training_command_line_checks_everything_before_the_first_epoch(tmp_path, monkeypatch):
    import json

    from crystal_course import dataset, zone_axis

    def no_training(*args, **kwargs):
        raise AssertionError("training started although the run could not be saved")

    monkeypatch.setattr(training, "train", no_training)
    data = dataset.generate(tmp_path / "ds", 1, 1, n_atoms=40, chunk_size=4, n_jobs=1,
                            progress=False)  # fmt: skip
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    code, last = _training_error(str(data), "--out", str(a_file))
    assert code == 2 and "is a file" in last
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "ziletti_cnn.weights.h5").write_bytes(b"an earlier model")
    code, last = _training_error(str(data), "--out", str(tmp_path / "model"))
    assert code == 2 and "--overwrite" in last
    # A corrupt chunk of a test split is found before training, not after.
    manifest = json.loads((data / dataset.MANIFEST).read_text())
    name = next(n for n, e in manifest["chunks"].items() if e["split"] == "test_pristine")
    (data / name).write_bytes((data / name).read_bytes()[::-1])
    code, last = _training_error(str(data), "--out", str(tmp_path / "new"))
    assert code == 2 and name in last and "corrupt" in last
    # A zone-axis dataset (Chapter 6) is not the 2018 CNN's input.
    patterns = zone_axis.generate(tmp_path / "za", zone_axis.Config((221, 229), 1, 1, (0.2,),
                                  n_pixels=32, n_atoms=60), n_jobs=1, progress=False)  # fmt: skip
    code, last = _training_error(str(patterns), "--out", str(tmp_path / "new"))
    assert code == 2 and "is a zone_axis dataset, not a fingerprint dataset" in last


def test_a_card_that_is_not_json_or_has_no_self_check_is_named(tmp_path):
    import json

    _, path = _saved(tmp_path)
    card_file = models.card_path(path)
    card = json.loads(card_file.read_text())
    card_file.write_text(json.dumps(card)[:-5])  # truncated
    with pytest.raises(ValueError, match=f"{card_file.name} is not a valid model card"):
        models.load(path)
    card.pop("self_check")
    card_file.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="has no self_check"):
        models.load(path)
    assert models.load(path, verify=False).count_params() > 0  # unverified, when asked


def test_predict_takes_one_image_or_a_batch_and_names_the_shape():
    model = ziletti_cnn(n_classes=3, seed=1)
    image = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    one = models.predict(model, image)
    assert one.shape == (3,)
    np.testing.assert_allclose(one, models.predict(model, image[None])[0], rtol=1e-6)
    with pytest.raises(ValueError, match="channels first"):
        models.predict(model, np.moveaxis(image, -1, 0)[None])
    with pytest.raises(ValueError, match=r"x must have shape \(N, 64, 64, 3\)"):
        models.predict(model, image[:32])
    with pytest.raises(ValueError, match="non-finite"):
        models.predict(model, np.full((64, 64, 3), np.nan))


def test_the_training_command_line_writes_a_card_naming_its_data(tmp_path):
    import json

    from crystal_course import dataset

    data = dataset.generate(tmp_path / "ds", 2, 1, n_atoms=40, chunk_size=8, n_jobs=1,
                            progress=False)  # fmt: skip
    assert training.main([str(data), "--out", str(tmp_path / "m"), "--epochs", "1"]) == 0
    (card_file,) = (tmp_path / "m").glob("*.json")
    card = json.loads(card_file.read_text())
    # The folder a card's command names may have been named by hand: the format and
    # parameters say which data set it was.
    assert card["dataset"]["format"] == dataset.FORMAT_VERSION
    assert card["dataset"]["parameters"]["n_per_class"] == 2
    assert card["command"].endswith(f"{data} --out {tmp_path / 'm'} --epochs 1")


def test_orientation_free_networks_keep_batch_norm_in_inference_under_mc_dropout():
    rng = np.random.default_rng(0)
    patterns = rng.random((6, 64, 1)).astype("float32")
    soap = rng.normal(3, 2, (6, 20)).astype("float32")
    cnn = models.powder_cnn(64, 5, dropout=1e-9, seed=0)
    dense = models.soap_network(20, 4, dropout=1e-9, seed=0)
    dense.get_layer("standardise").adapt(soap)
    assert cnn.output_shape == (None, 5) and dense.output_shape == (None, 4)
    for model, x in ((cnn, patterns), (dense, soap)):
        # a dropout that drops (almost) nothing: every pass equals the inference output,
        # which batch statistics (training=True on the whole model) would not give
        samples = models.mc_dropout_samples(model, x, passes=3)
        np.testing.assert_allclose(samples[0], model.predict(x, verbose=0), rtol=1e-4, atol=1e-6)
        trained_mode = np.asarray(model(x, training=True))
        assert model is dense or not np.allclose(trained_mode, samples[0], atol=1e-4)
    noisy = models.powder_cnn(64, 5, dropout=0.5, seed=0)
    samples = models.mc_dropout_samples(noisy, patterns, passes=4)
    assert not np.allclose(samples[0], samples[1])  # the passes are different sub-networks
    with pytest.raises(ValueError, match="multiple of 8"):
        models.powder_cnn(60)
    with pytest.raises(ValueError, match="n_classes"):
        models.soap_network(20, 1)
