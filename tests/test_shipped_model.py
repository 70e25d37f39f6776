"""The shipped model loads and answers on every stack the package supports.

``make test`` runs this file on the pinned stack and again on the Colab stack
(``constraints-colab.txt``: older Keras, TensorFlow and NumPy), so a shipped file
that only the newest Keras can read fails here, not on a student's Colab.
"""

from __future__ import annotations

import numpy as np

from crystal_course import models


def test_shipped_model_loads_and_its_card_says_how_it_was_made():
    model = models.load_pretrained()
    card = models.model_card()
    assert model.count_params() == 365_719
    assert card["architecture"] == {
        "builder": "ziletti_cnn",
        "input_shape": [64, 64, 3],
        "n_classes": 7,
    }
    assert card["command"].startswith("python -m crystal_course.training")
    assert card["dataset"]["n_train"] >= 10_517  # paper scale
    assert card["dataset"]["parameters"]["n_per_class"] == 1503
    assert card["dataset"]["format"] == 2  # A7 and A10 in space group 166
    assert card["epochs"] == 5 and set(card["versions"]) >= {"keras", "tensorflow"}
    assert set(card["test_accuracy"]) == {
        "test_pristine",
        "test_vacancies_0.25",
        "test_displacements_0.02",
    }


def test_shipped_model_reproduces_the_outputs_recorded_when_it_was_saved():
    model = models.load_pretrained()
    recorded = np.asarray(models.model_card()["self_check"])
    got = model.predict(models.self_check_input(model, len(recorded)), verbose=0)
    np.testing.assert_allclose(got, recorded, rtol=1e-3, atol=1e-7)


def test_every_shipped_model_loads_where_tensorflow_sees_a_gpu(monkeypatch):
    """A Colab GPU runtime: the builders would choose mixed precision; loading must not."""
    from crystal_course import config

    monkeypatch.setattr(config, "gpu_names", lambda: ("/physical_device:GPU:0",))
    assert models.ziletti_cnn().get_layer("conv1").compute_dtype == "float16"
    for name in models.PRETRAINED:
        model = models.load_pretrained(name)  # raises if its self-check fails
        assert {layer.compute_dtype for layer in model.layers if layer.weights} == {"float32"}
        card = models.model_card(name)
        assert card["precision"]["self_check"] == models.SELF_CHECK_PRECISION
        assert "mixed_precision" not in card["architecture"]


def test_shipped_model_classifies_real_elements():
    from ase.build import bulk

    names, probabilities = models.predict_structures([bulk("Cu"), bulk("Fe"), bulk("Si")])
    assert names == ["fcc (225)", "bcc (229)", "diamond (227)"]
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
