"""What a trained network looks at: activations, attentive response maps, saliency.

Three views of a convolutional classifier, all computed with Keras 3 on the
TensorFlow backend:

- :func:`activations` -- the feature maps of chosen layers (a Keras sub-model;
  keract's own ``get_activations`` does not work with Keras 3, its displays do);
- :func:`attentive_response_maps` -- the attentive response maps of Kumar et
  al. (2016) as used by Ziletti et al. (2018): the dominant filters of a
  convolutional layer back-projected to the input with a DeconvNet
  (Zeiler & Fergus 2014);
- :func:`saliency` and :func:`grad_cam` -- gradient views of one class score.

:func:`peak_overlap` turns "it looks at the peaks" into a number.

Introduced in Chapter 4.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def _batch(model: keras.Model, x) -> np.ndarray:
    """``x`` as a float32 batch of the model's input shape (adds a batch axis to one image)."""
    expected = tuple(model.input_shape[1:])
    x = np.asarray(x, dtype=np.float32)
    if x.shape == expected:
        x = x[None]
    if x.ndim != len(expected) + 1 or x.shape[1:] != expected:
        raise ValueError(
            f"x must be one image {expected} or a batch (N, {', '.join(map(str, expected))}), "
            f"got shape {x.shape}"
        )
    return x


def _one_image(model: keras.Model, x) -> np.ndarray:
    """``x`` as a batch of exactly one image."""
    batch = _batch(model, x)
    if len(batch) != 1:
        raise ValueError(f"x must be one image, got a batch of {len(batch)}")
    return batch


def _layer(model: keras.Model, name: str, conv: bool = False):
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise ValueError(f"unknown layer {name!r}; the model has: {', '.join(names)}")
    layer = model.get_layer(name)
    if conv and not isinstance(layer, keras.layers.Conv2D):
        convs = [n for n in names if isinstance(model.get_layer(n), keras.layers.Conv2D)]
        raise ValueError(
            f"layer {name!r} is a {type(layer).__name__}, not a Conv2D; use one of: "
            f"{', '.join(convs)}"
        )
    return layer


def conv_layers(model: keras.Model) -> list[str]:
    """Names of the model's ``Conv2D`` layers, input side first.

    Notes
    -----
    Introduced in Chapter 4.
    """
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def activations(model: keras.Model, x, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """Outputs of the named layers for the input ``x``.

    Parameters
    ----------
    model : keras.Model
        A functional model, e.g. :func:`crystal_course.models.load_pretrained`.
    x : numpy.ndarray
        One image ``(64, 64, 3)`` or a batch ``(N, 64, 64, 3)``.
    layers : list of str, optional
        Layer names (default: every layer except the input).

    Returns
    -------
    dict of str to numpy.ndarray
        Layer name -> activations with a batch axis, e.g. ``(1, 64, 64, 32)`` for
        ``conv1``, in the format keract's ``display_activations`` and
        ``display_heatmaps`` take.

    Raises
    ------
    ValueError
        For an unknown layer name or an input of the wrong shape.

    Notes
    -----
    Introduced in Chapter 4.
    """
    x = _batch(model, x)
    if layers is None:
        layers = [
            layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
        ]
    outputs = [_layer(model, name).output for name in layers]
    sub = keras.Model(model.inputs, outputs)
    values = sub.predict(x, verbose=0, batch_size=256)
    if len(layers) == 1:
        values = [values]
    return {name: np.asarray(v) for name, v in zip(layers, values, strict=True)}


def _deconvnet_forward(model: keras.Model, layer_name: str, x):
    """The model's forward pass up to ``layer_name`` with DeconvNet ReLUs.

    Forward values are the model's; only the backward rule of every ReLU is
    changed to ``relu(upstream signal)`` (ignoring the forward mask), which is
    what Zeiler & Fergus' deconvolution network does. Max pooling keeps its
    switches and convolutions back-project with their transposed kernels -- both
    are exactly TensorFlow's gradients.
    """
    import tensorflow as tf

    @tf.custom_gradient
    def deconv_relu(z):
        return tf.nn.relu(z), lambda dy: tf.nn.relu(dy)

    h = x
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Conv2D):
            if layer.activation.__name__ not in ("relu", "linear"):
                raise ValueError(f"DeconvNet needs ReLU convolutions; {layer.name} has another")
            h = tf.nn.conv2d(h, layer.kernel, strides=layer.strides, padding=layer.padding.upper())
            if layer.use_bias:
                h = h + layer.bias
            if layer.activation.__name__ == "relu":
                h = deconv_relu(h)
        elif isinstance(layer, keras.layers.MaxPooling2D | keras.layers.Dropout):
            h = layer(h, training=False) if isinstance(layer, keras.layers.Dropout) else layer(h)
        else:
            raise ValueError(
                f"DeconvNet back-projection supports Conv2D/MaxPooling2D/Dropout before "
                f"{layer_name!r}; found {type(layer).__name__} {layer.name!r}"
            )
        if layer.name == layer_name:
            return h
    raise ValueError(f"layer {layer_name!r} not reached")


def attentive_response_maps(
    model: keras.Model, x, layer: str, n_filters: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Attentive response maps: the dominant filters of a conv layer, back-projected.

    Following Kumar et al. (2016) as used by Ziletti et al. (2018): the
    ``n_filters`` filters of ``layer`` with the largest mean activation for this
    input are the dominant ones; each is back-projected to input space alone
    (its activation map is the signal, the other filters' maps are zero) with a
    DeconvNet (Zeiler & Fergus 2014): through max pooling by the forward pass' switches, through
    convolutions by the transposed kernels, and through each ReLU by applying a
    ReLU to the back-projected signal. This is the deconvolution approach of the
    papers rather than a plain gradient, whose ReLU rule would keep only the
    paths active in the forward pass; :func:`saliency` gives that view.

    Parameters
    ----------
    model : keras.Model
        A plain CNN of Conv2D / MaxPooling2D layers up to ``layer`` (like
        :func:`crystal_course.models.ziletti_cnn`).
    x : numpy.ndarray
        One fingerprint ``(64, 64, 3)``.
    layer : str
        A ``Conv2D`` layer name, e.g. ``"conv1"`` ... ``"conv6"``.
    n_filters : int, default 4
        Number of dominant filters.

    Returns
    -------
    maps : numpy.ndarray
        ``(n_filters, height, width)`` non-negative float32 maps in input
        resolution: the magnitude of the back-projection summed over the
        colour channels, each scaled to a maximum of 1.
    filters : numpy.ndarray
        Indices of the dominant filters, strongest first.

    Raises
    ------
    ValueError
        For an unknown layer, a layer that is not a convolution, more filters
        than the layer has, or a batch instead of one image.

    Notes
    -----
    Introduced in Chapter 4.
    """
    import tensorflow as tf

    conv = _layer(model, layer, conv=True)
    batch = _one_image(model, x)
    if not 1 <= n_filters <= conv.filters:
        raise ValueError(f"n_filters must be in [1, {conv.filters}], got {n_filters!r}")
    feature_maps = _deconvnet_forward(model, layer, tf.constant(batch))
    strength = tf.reduce_mean(feature_maps, axis=(0, 1, 2)).numpy()
    filters = np.argsort(-strength, kind="stable")[:n_filters]
    # One backward pass for all filters: copy k of the image back-projects filter k.
    copies = tf.constant(np.repeat(batch, n_filters, axis=0))
    select = tf.one_hot(filters, conv.filters, dtype=tf.float32)[:, None, None, :]
    with tf.GradientTape() as tape:
        tape.watch(copies)
        chosen = _deconvnet_forward(model, layer, copies) * select
        # The signal entering the DeconvNet is the filter's own activation map
        # (Zeiler & Fergus); every other filter's map is zero.
        target = tf.reduce_sum(chosen * tf.stop_gradient(chosen))
    back = tape.gradient(target, copies).numpy()
    magnitude = np.abs(back).sum(axis=-1)
    peak = magnitude.max(axis=(1, 2), keepdims=True)
    maps = np.divide(magnitude, peak, out=np.zeros_like(magnitude), where=peak > 0)
    return maps.astype(np.float32), filters


def _class_index(model: keras.Model, batch: np.ndarray, class_index: int | None) -> int:
    n_classes = model.output_shape[-1]
    if class_index is None:
        return int(model.predict(batch, verbose=0)[0].argmax())
    if not (isinstance(class_index, int | np.integer) and 0 <= class_index < n_classes):
        raise ValueError(f"class_index must be in [0, {n_classes}), got {class_index!r}")
    return int(class_index)


def _class_scores(model: keras.Model, extra=None):
    """A function ``image -> (extra layer's output, class scores before the softmax)``.

    Saliency and Grad-CAM are defined on the class score (the logit): the softmax
    probability saturates at p = 1, where its gradient vanishes for any image the
    network is sure of. The score is the last Dense layer's pre-activation, computed
    from that layer's own kernel and bias.
    """
    import tensorflow as tf

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.get_config()["activation"] != "softmax":
        raise ValueError(
            "expected a model ending in a Dense layer with a softmax activation (class "
            f"scores are its pre-activation), got {type(last).__name__} {last.name!r}"
        )
    outputs = [last.input] if extra is None else [extra.output, last.input]
    sub = keras.Model(model.inputs, outputs)

    def scores(image):
        out = sub(image, training=False)
        features, hidden = (None, out) if extra is None else out
        hidden = tf.cast(hidden, tf.float32)
        logits = tf.matmul(hidden, tf.cast(last.kernel, tf.float32)) + tf.cast(
            last.bias, tf.float32
        )
        return features, logits

    return scores


def saliency(model: keras.Model, x, class_index: int | None = None) -> np.ndarray:
    """Gradient saliency: ``|d score / d pixel|``, maximum over the colour channels.

    The score is the class score of ``class_index`` before the softmax (the
    logit; default class: the predicted one), with dropout off, as Simonyan et
    al. (2014) define it: the softmax probability saturates at 1.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` non-negative float32 map scaled to a maximum of 1.

    Notes
    -----
    Introduced in Chapter 4.
    """
    import tensorflow as tf

    batch = _one_image(model, x)
    c = _class_index(model, batch, class_index)
    scores = _class_scores(model)
    image = tf.constant(batch)
    with tf.GradientTape() as tape:
        tape.watch(image)
        score = scores(image)[1][0, c]
    grad = np.abs(tape.gradient(score, image)[0].numpy()).max(axis=-1)
    peak = grad.max()
    return (grad / peak if peak > 0 else grad).astype(np.float32)


def grad_cam(
    model: keras.Model, x, layer: str = "conv6", class_index: int | None = None
) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) of one class at a conv layer, in input resolution.

    The layer's feature maps ``A_k`` are weighted by the spatial mean of
    ``d score / d A_k``, the score being the class score before the softmax (as
    in the paper); the ReLU of the weighted sum is resized bilinearly to the
    input size.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` non-negative float32 map scaled to a maximum of 1
        (all zeros if no feature map speaks for the class).

    Raises
    ------
    ValueError
        For an unknown or non-convolutional layer, or a bad class index.

    Notes
    -----
    Introduced in Chapter 4.
    """
    import tensorflow as tf

    conv = _layer(model, layer, conv=True)
    batch = _one_image(model, x)
    c = _class_index(model, batch, class_index)
    scores = _class_scores(model, conv)
    with tf.GradientTape() as tape:
        feature_maps, logits = scores(tf.constant(batch))
        score = logits[0, c]
    grads = tape.gradient(score, feature_maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feature_maps, axis=-1, keepdims=True))
    cam = tf.image.resize(cam, batch.shape[1:3], method="bilinear")[0, :, :, 0].numpy()
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def peak_mask(fingerprint: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    """Pixels of a fingerprint on a diffraction peak: max over channels >= ``threshold`` x max.

    Parameters
    ----------
    fingerprint : numpy.ndarray
        ``(height, width, 3)`` or ``(height, width)`` intensities.
    threshold : float, default 0.1
        Fraction of the brightest pixel.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` boolean mask.

    Notes
    -----
    Introduced in Chapter 4.
    """
    image = np.asarray(fingerprint, dtype=np.float64)
    if image.ndim == 3:
        image = image.max(axis=-1)
    if image.ndim != 2:
        raise ValueError(f"fingerprint must be (height, width[, channels]), got {image.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if not np.isfinite(image).all() or image.max() <= 0:
        raise ValueError("fingerprint must be finite with some positive intensity")
    return image >= threshold * image.max()


def _region(fingerprint: np.ndarray, region: np.ndarray | None) -> np.ndarray:
    from crystal_course.diffraction import ring_mask

    shape = np.shape(fingerprint)[:2]
    if region is None:
        if shape[0] != shape[1]:
            raise ValueError(f"the default region (the ring) needs a square image, got {shape}")
        return ring_mask(shape[0])
    region = np.asarray(region, dtype=bool)
    if region.shape != shape:
        raise ValueError(f"region must be (height, width) = {shape}, got {region.shape}")
    return region


def peak_overlap(
    response: np.ndarray,
    fingerprint: np.ndarray,
    threshold: float = 0.1,
    region: np.ndarray | None = None,
) -> float:
    """How much of a map's mass lies on the fingerprint's peaks, relative to chance.

    ``(share of the map's mass on peak pixels) / (share of pixels that are
    peaks)``, both counted inside ``region`` only: 1 for a map that ignores where
    the peaks are (e.g. uniform or random over the region), ``1 / peak share``
    for a map that lives on the peaks only, below 1 for a map that avoids them.

    The region defaults to the fingerprint's ring (:func:`crystal_course.diffraction.ring_mask`):
    every peak lies inside it, so over the whole image a map that merely stays
    inside the ring, blind to the peaks, would already score above 1.

    Parameters
    ----------
    response : numpy.ndarray
        ``(height, width)`` map (absolute values are used), e.g. from
        :func:`attentive_response_maps`.
    fingerprint : numpy.ndarray
        ``(height, width, 3)`` fingerprint defining the peaks (:func:`peak_mask`).
    threshold : float, default 0.1
        Peak threshold as a fraction of the brightest pixel.
    region : numpy.ndarray, optional
        ``(height, width)`` bool mask of the pixels that count (default: the ring).

    Raises
    ------
    ValueError
        For shapes that do not match, or a map without any mass in the region.

    Notes
    -----
    Introduced in Chapter 4.
    """
    peaks = peak_mask(fingerprint, threshold)
    weights = np.abs(np.asarray(response, dtype=np.float64))
    if weights.shape != peaks.shape:
        raise ValueError(
            f"response must be (height, width) = {peaks.shape} like the fingerprint, "
            f"got {weights.shape}"
        )
    inside = _region(fingerprint, region)
    weights, peaks = weights[inside], peaks[inside]
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("response must be finite with some non-zero values in the region")
    if not peaks.any():
        raise ValueError("the fingerprint has no peak pixel in the region")
    return float((weights[peaks].sum() / total) / peaks.mean())


def shuffled_overlap(
    response: np.ndarray,
    fingerprint: np.ndarray,
    n_shuffles: int = 20,
    rng: np.random.Generator | int | None = 0,
    threshold: float = 0.1,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`peak_overlap` of a map with pixel-shuffled copies of the fingerprint.

    The baseline of Chapter 4: the same number of peak pixels, placed at random
    inside the same region (default: the ring), so its mean is 1 whatever the map.

    Returns
    -------
    numpy.ndarray
        ``(n_shuffles,)`` overlaps; their mean is about 1.

    Notes
    -----
    Introduced in Chapter 4.
    """
    rng = np.random.default_rng(rng)
    image = np.asarray(fingerprint)
    inside = _region(image, region)
    pixels = image[inside]
    scores = []
    for _ in range(n_shuffles):
        shuffled = image.copy()
        shuffled[inside] = pixels[rng.permutation(len(pixels))]
        scores.append(peak_overlap(response, shuffled, threshold, inside))
    return np.array(scores)


def overlap_table(
    models: dict,
    x: np.ndarray,
    layers: list[str] | None = None,
    n_filters: int = 4,
    n_shuffles: int = 10,
    seed: int = 0,
    threshold: float = 0.1,
    progress: bool = True,
    per_crystal: bool = False,
):
    """Mean :func:`peak_overlap` of attentive response maps, per layer and model.

    For every fingerprint of ``x`` and every layer, the ``n_filters`` dominant
    filters are back-projected (:func:`attentive_response_maps`) and each map
    is scored against the fingerprint's peaks, and against ``n_shuffles``
    pixel-shuffled copies of it (:func:`shuffled_overlap`, the chance baseline).

    Parameters
    ----------
    models : dict of str to keras.Model
        Display name -> model (e.g. the shipped one and an untrained copy).
    x : numpy.ndarray
        ``(N, 64, 64, 3)`` fingerprints.
    layers : list of str, optional
        Conv layers (default: all of the first model's).
    n_filters, n_shuffles, seed, threshold
        As in the functions above.
    progress : bool, default True
        Show a tqdm progress bar.
    per_crystal : bool, default False
        Also return each crystal's mean overlap (for intervals over crystals).

    Returns
    -------
    pandas.DataFrame
        Index: layer; columns: one per model (mean overlap) plus
        ``"shuffled baseline"`` (mean over all models' maps) -- 1 is chance.
    dict, only with ``per_crystal``
        Layer -> model name -> ``(N,)`` mean overlap of each crystal's maps.

    Notes
    -----
    Introduced in Chapter 4.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict of name -> keras.Model")
    first = next(iter(models.values()))
    layers = layers or conv_layers(first)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be a batch (N, 64, 64, 3), got shape {x.shape}")
    rng = np.random.default_rng(seed)
    rows, crystals = {}, {}
    steps = tqdm(total=len(models) * len(layers) * len(x), disable=not progress, desc="maps")
    for layer in layers:
        row, baseline, crystals[layer] = {}, [], {}
        for name, model in models.items():
            scores = []
            for image in x:
                maps, _ = attentive_response_maps(model, image, layer, n_filters)
                scores.append([peak_overlap(m, image, threshold) for m in maps])
                for m in maps:
                    baseline.extend(shuffled_overlap(m, image, n_shuffles, rng, threshold))
                steps.update()
            row[name] = float(np.mean(scores))
            crystals[layer][name] = np.mean(scores, axis=1)
        row["shuffled baseline"] = float(np.mean(baseline))
        rows[layer] = row
    steps.close()
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("layer")
    return (table, crystals) if per_crystal else table


GRADIENT_VIEWS = ("saliency", "Grad-CAM")
"""The gradient views :func:`gradient_overlaps` scores."""


def gradient_overlaps(models: dict, x: np.ndarray, threshold: float = 0.1, seed: int = 0):
    """:func:`peak_overlap` of each gradient view, per model, with intervals over crystals.

    Every fingerprint of ``x`` gets its :func:`saliency` and its :func:`grad_cam`
    (conv6) from every model, each scored against its own peaks. A map that is zero
    everywhere (Grad-CAM of a network whose conv6 gradients all cancel) has no
    overlap: NaN, left out of the mean.

    Parameters
    ----------
    models : dict of str to keras.Model
        Display name -> model (e.g. the shipped one and an untrained copy).
    x : numpy.ndarray
        ``(N, 64, 64, 3)`` fingerprints.
    threshold : float, default 0.1
        Peak threshold as a fraction of the brightest pixel.
    seed : int, default 0
        Seed of the bootstrap intervals.

    Returns
    -------
    pandas.DataFrame
        One row per view and model: ``view``, ``model``, ``mean`` overlap, its 95 %
        bootstrap interval over crystals (``low``, ``high``,
        :func:`crystal_course.uncertainty.mean_interval`) and ``n`` (crystals with a
        non-zero map); 1 is chance.
    dict
        View -> model name -> ``(N,)`` overlap of each crystal (NaN for a zero map).

    Notes
    -----
    Introduced in Chapter 4.
    """
    import pandas as pd

    from crystal_course.uncertainty import mean_interval

    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict of name -> keras.Model")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be a batch (N, 64, 64, 3), got shape {x.shape}")
    views = {"saliency": saliency, "Grad-CAM": grad_cam}
    rows, crystals = [], {view: {} for view in views}
    for view, function in views.items():
        for name, model in models.items():
            scores = []
            for image in x:
                response = function(model, image)
                scores.append(peak_overlap(response, image, threshold) if response.max() > 0
                              else np.nan)  # fmt: skip
            scores = np.array(scores)
            crystals[view][name] = scores
            kept = scores[~np.isnan(scores)]
            mean, low, high = mean_interval(kept, seed) if len(kept) else (np.nan,) * 3
            rows.append({"view": view, "model": name, "mean": mean, "low": low, "high": high,
                         "n": len(kept)})  # fmt: skip
    return pd.DataFrame(rows), crystals


def plot_response_maps(
    fingerprints: np.ndarray, maps: np.ndarray, titles: list[str], row_labels: list[str]
):
    """A grid of response maps over their fingerprints' peaks.

    Parameters
    ----------
    fingerprints : numpy.ndarray
        ``(n_cols, height, width, 3)``, one per column.
    maps : numpy.ndarray
        ``(n_rows, n_cols, height, width)`` maps in [0, 1].
    titles : list of str
        Column titles (e.g. class names).
    row_labels : list of str
        Row labels (e.g. layer names).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Introduced in Chapter 4. The map is shown in colour; the fingerprint's peak
    pixels (:func:`peak_mask`) are outlined in white.
    """
    import matplotlib.pyplot as plt

    maps = np.asarray(maps)
    n_rows, n_cols = maps.shape[:2]
    if len(fingerprints) != n_cols or len(titles) != n_cols or len(row_labels) != n_rows:
        raise ValueError(
            f"need {n_cols} fingerprints and titles and {n_rows} row labels for maps of shape "
            f"{maps.shape}"
        )
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(1.9 * n_cols, 1.9 * n_rows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    for c in range(n_cols):
        peaks = peak_mask(fingerprints[c])
        for r in range(n_rows):
            ax = axes[r, c]
            shown = ax.imshow(maps[r, c], origin="lower", cmap="viridis", vmin=0, vmax=1)
            ax.contour(peaks, levels=[0.5], colors="white", linewidths=0.6, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(row_labels[r], fontsize=9)
    fig.colorbar(shown, ax=axes, shrink=0.6, label="response (max = 1)")
    return fig
