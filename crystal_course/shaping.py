"""Shaped diffraction patterns (Tiong, Kim, Han & Kim, npj Comput. Mater. 6, 196 (2020)).

A zone-axis spot pattern becomes a *shape*: the bright spots are nodes, and
nodes closer than ``factor`` times the shortest spot distance are joined by
lines, brighter and thicker for bigger spots, drawn over the whole raw
pattern. Neighbouring crystal systems whose spot patterns differ only in small
distortions then differ in which spots are joined -- a topological feature a
CNN picks up easily.

Everything is vectorised: spots are found with ``scipy.ndimage`` (connected
components and intensity-weighted centroids), pair distances with
``scipy.spatial.distance.pdist``, and the lines of many patterns are rasterised
at once from the distance of each pixel of a line's bounding box to its segment
(anti-aliased, so rotations of the input give rotations of the output). The
public code used O(N^4) Python loops.

Introduced in Chapter 6.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import pdist


def _pattern(pattern) -> np.ndarray:
    image = np.asarray(pattern, dtype=np.float32)
    if image.ndim != 2 or image.shape[0] != image.shape[1] or image.shape[0] < 4:
        raise ValueError(f"pattern must be a square 2-D image (n, n), got shape {image.shape}")
    return _intensities(image, "pattern")


def _intensities(images: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 255:
        raise ValueError(f"{what} must hold finite intensities in [0, 255] (8-bit scale)")
    return images


def find_nodes(pattern: np.ndarray, threshold: float = 50) -> tuple[np.ndarray, np.ndarray]:
    """The spots of a pattern: connected pixels at or above ``threshold``.

    Parameters
    ----------
    pattern : numpy.ndarray
        ``(n, n)`` intensities on the 0-255 scale.
    threshold : float, default 50
        Node threshold (the paper's 50 of 255).

    Returns
    -------
    centres : numpy.ndarray
        ``(M, 2)`` intensity-weighted ``(row, col)`` centroids, in pixels.
    sizes : numpy.ndarray
        ``(M,)`` number of pixels of each spot.

    Notes
    -----
    Introduced in Chapter 6. 4-connected components, so a spot is a set of
    pixels that touch along edges.
    """
    return _stack_nodes(_pattern(pattern)[None], threshold)[0]


_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)
"""4-connectivity within each image of a stack, none between images."""


def _stack_nodes(images: np.ndarray, threshold: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`find_nodes` of every image of an ``(N, n, n)`` stack, labelled in one pass.

    The components are numbered in scan order, so each image's labels are one
    contiguous run; the centroids are ``np.bincount`` sums over the same pixels in the
    same order as :func:`scipy.ndimage.center_of_mass` would take them.
    """
    labels, count = ndimage.label(images >= threshold, structure=_IN_PLANE)
    if count == 0:
        return [(np.zeros((0, 2)), np.zeros(0, dtype=np.int64)) for _ in images]
    n = images.shape[-1]
    where = np.flatnonzero(labels)  # the node pixels, in scan order
    flat = labels.ravel()[where] - 1
    weights = images.ravel()[where].astype(np.float64)
    rows, cols = (where // n % n).astype(np.float64), (where % n).astype(np.float64)
    total = np.bincount(flat, weights, minlength=count)
    centres = np.column_stack([np.bincount(flat, weights * rows, minlength=count),
                               np.bincount(flat, weights * cols, minlength=count)])  # fmt: skip
    centres /= total[:, None]
    sizes = np.bincount(flat, minlength=count)
    ends = np.maximum.accumulate(labels.reshape(len(images), -1).max(axis=1))
    starts = np.concatenate([[0], ends[:-1]])
    return [(centres[a:b], sizes[a:b]) for a, b in zip(starts, ends, strict=True)]


def node_pairs(centres: np.ndarray, factor: float = 1.7, min_separation: float = 2.0) -> np.ndarray:
    """Pairs of nodes to join: distance at most ``factor`` x the shortest distance.

    Pairs closer than ``min_separation`` pixels are taken as one spot and
    neither joined nor used for the shortest distance.

    Parameters
    ----------
    centres : numpy.ndarray
        ``(M, 2)`` node positions in pixels.
    factor : float, default 1.7
        The paper's distance factor.
    min_separation : float, default 2.0
        In pixels.

    Returns
    -------
    numpy.ndarray
        ``(P, 2)`` int indices ``i < j`` of joined nodes (empty for fewer than
        two nodes).

    Notes
    -----
    Introduced in Chapter 6.
    """
    centres = np.asarray(centres, dtype=float)
    if centres.ndim != 2 or centres.shape[1] != 2:
        raise ValueError(f"centres must be (M, 2) pixel positions, got shape {centres.shape}")
    if not factor >= 1:
        raise ValueError(f"factor must be >= 1, got {factor!r}")
    if len(centres) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    i, j = np.triu_indices(len(centres), k=1)
    d = pdist(centres)  # condensed: the pairs in the order of (i, j)
    valid = d >= min_separation
    if not valid.any():
        return np.zeros((0, 2), dtype=np.int64)
    shortest = d[valid].min()
    keep = valid & (d <= factor * shortest * (1 + 1e-9))
    return np.column_stack([i[keep], j[keep]])


def _rasterise(
    a: np.ndarray,
    b: np.ndarray,
    value: np.ndarray,
    half: np.ndarray,
    n: int,
    image: np.ndarray | None = None,
    n_images: int = 1,
) -> np.ndarray:
    """Anti-aliased segments ``a -> b`` (pixels, ``(row, col)``) on ``n x n`` images.

    Vectorised over all segments (of all images) at once: every pixel of each
    segment's bounding box, widened by its half-width and half a pixel (no pixel
    outside can be lit), the exact distance of each to its segment, and
    ``np.maximum.at``. Segment ``s`` is drawn on image ``image[s]`` (default: all
    on one image); returns ``(n_images, n, n)`` float32.
    """
    image = np.zeros(len(a), dtype=np.int64) if image is None else np.asarray(image)
    a = a.astype(np.float32)
    ab = (b - a).astype(np.float32)
    a0, a1, ab0, ab1 = a[:, 0], a[:, 1], ab[:, 0], ab[:, 1]
    reach = half.astype(np.float64) + 0.5
    low = np.floor(np.minimum(a, a + ab) - reach[:, None]).astype(np.int64).clip(0, n - 1)
    high = np.ceil(np.maximum(a, a + ab) + reach[:, None]).astype(np.int64).clip(0, n - 1)
    height, width = (high - low + 1).T
    counts = height * width
    line = np.repeat(np.arange(len(a)), counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    row = low[line, 0] + k // width[line]
    col = low[line, 1] + k % width[line]
    p0 = row.astype(np.float32) - a0[line]
    p1 = col.astype(np.float32) - a1[line]
    s0, s1 = ab0[line], ab1[line]
    tt = np.clip((p0 * s0 + p1 * s1) / np.maximum(s0 * s0 + s1 * s1, 1e-12), 0, 1)
    d0, d1 = p0 - tt * s0, p1 - tt * s1
    d = np.sqrt(d0 * d0 + d1 * d1)
    level = np.clip(half[line] + 0.5 - d, 0, 1) * value[line]
    out = np.zeros(n_images * n * n, dtype=np.float32)
    np.maximum.at(out, (image[line] * n + row) * n + col, level)
    return out.reshape(n_images, n, n)


SHAPING_BACKGROUNDS = ("raw", "nodes")
"""What the lines of :func:`shape_pattern` are drawn over: ``"raw"``, the whole
pattern (the paper's S = R + lines), or ``"nodes"``, only the pixels at or above
the node threshold (an earlier version of this course, kept for the ablation)."""


def shape_pattern(
    pattern: np.ndarray,
    threshold: float = 50,
    factor: float = 1.7,
    min_separation: float | None = None,
    width: float = 1.0,
    background: str = "raw",
    brightness: float = 1.0,
) -> np.ndarray:
    """The shaped pattern of Tiong et al. (2020): the raw pattern plus lines between near spots.

    **The paper's parts.** Nodes are the spots at or above ``threshold``
    (:func:`find_nodes`; 50 of 255); pairs closer than ``factor`` x the shortest
    node distance are joined (:func:`node_pairs`; 1.7); the shaped pattern is
    ``S = R + sum of lines``, the whole raw pattern ``R`` with the lines added,
    and a line's thickness grows with the size of its nodes.

    **The course's choices** (the paper gives no formula): a line between spots
    of sizes ``s_i`` and ``s_j`` has intensity ``255 x (s_i + s_j) / (2 s_max)``
    and half-width ``width x (0.5 + (s_i + s_j) / (2 s_max))`` pixels; lines are
    anti-aliased (a pixel at distance ``d`` from the segment gets
    ``clip(half-width + 0.5 - d, 0, 1)`` of the line's intensity); where lines
    cross, the brighter one counts; ``S`` is clipped at 255 to stay an 8-bit
    image; pairs closer than ``min_separation`` are one spot.

    Parameters
    ----------
    pattern : numpy.ndarray
        ``(n, n)`` pattern on the 0-255 scale (e.g. one channel of
        :func:`crystal_course.zone_axis.patterns`).
    threshold : float, default 50
        Node threshold.
    factor : float, default 1.7
        Distance factor.
    min_separation : float, optional
        Pairs closer than this many pixels are the same spot (default
        ``2 x n / 64``).
    width : float, default 1.0
        Line width scale, in pixels.
    background : {"raw", "nodes"}, default "raw"
        ``"raw"``: ``S = min(R + lines, 255)``, so ``S >= R`` everywhere (the
        paper). ``"nodes"``: the lines over the pixels at or above the
        threshold only, every weaker pixel set to 0 (see
        :data:`SHAPING_BACKGROUNDS`).
    brightness : float, default 1.0
        Scales every line's intensity (0.5: half as bright).

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float32 in [0, 255]. Without a pair to join, the background
        alone.

    Raises
    ------
    ValueError
        For a non-square or non-2-D array, values outside [0, 255] or not
        finite, or an unknown ``background``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    image = _pattern(pattern)
    lines = _shape_images(image[None], threshold, factor, min_separation, width, background,
                          brightness)  # fmt: skip
    return lines[0]


def _shape_images(images, threshold, factor, min_separation, width, background, brightness,
                  block: int = 128) -> np.ndarray:  # fmt: skip
    """:func:`shape_pattern` of ``(N, n, n)`` checked float32 images, rasterised in blocks."""
    if background not in SHAPING_BACKGROUNDS:
        raise ValueError(f"background must be one of {SHAPING_BACKGROUNDS}, got {background!r}")
    n = images.shape[-1]
    min_separation = 2.0 * n / 64 if min_separation is None else min_separation
    out = np.empty(images.shape, dtype=np.float32)
    for start in range(0, len(images), block):
        chunk = images[start : start + block]
        segments = []
        for k, (centres, sizes) in enumerate(_stack_nodes(chunk, threshold)):
            pairs = node_pairs(centres, factor, min_separation)
            if len(pairs):
                weight = (sizes[pairs[:, 0]] + sizes[pairs[:, 1]]) / (2.0 * sizes.max())
                segments.append((centres[pairs[:, 0]], centres[pairs[:, 1]],
                                 (255 * brightness * weight).astype(np.float32),
                                 (width * (0.5 + weight)).astype(np.float32),
                                 np.full(len(pairs), k)))  # fmt: skip
        if segments:
            a, b, value, half, which = (np.concatenate(x) for x in zip(*segments, strict=True))
            lines = _rasterise(a, b, value, half, n, which, len(chunk))
        else:
            lines = np.zeros(chunk.shape, dtype=np.float32)
        if background == "nodes":
            out[start : start + block] = np.maximum(lines, np.where(chunk >= threshold, chunk, 0))
        else:
            out[start : start + block] = np.minimum(chunk + lines, 255)
    return out


def shape_patterns(
    patterns: np.ndarray,
    background: str = "raw",
    threshold: float = 50,
    factor: float = 1.7,
    min_separation: float | None = None,
    width: float = 1.0,
    brightness: float = 1.0,
) -> np.ndarray:
    """:func:`shape_pattern` of every channel of ``(n, n, C)`` or ``(N, n, n, C)`` patterns.

    Returns float32 of the same shape; the parameters are those of
    :func:`shape_pattern`. The lines of many patterns are rasterised together, so
    this is several times faster than a loop over :func:`shape_pattern`, with the
    same result.

    Notes
    -----
    Introduced in Chapter 6.
    """
    patterns = np.asarray(patterns)
    if patterns.ndim not in (3, 4):
        raise ValueError(f"patterns must be (n, n, C) or (N, n, n, C), got shape {patterns.shape}")
    flat = np.moveaxis(patterns.reshape(-1, *patterns.shape[-3:]), -1, 1)  # (N, C, n, n)
    images = np.ascontiguousarray(flat, dtype=np.float32).reshape(-1, *flat.shape[-2:])
    if images.shape[-1] != images.shape[-2] or images.shape[-1] < 4:
        raise ValueError(f"patterns must be square images (n, n, C), got shape {patterns.shape}")
    out = _shape_images(_intensities(images, "patterns"), threshold, factor, min_separation,
                        width, background, brightness)  # fmt: skip
    return np.moveaxis(out.reshape(flat.shape), 1, -1).reshape(patterns.shape)


LINE_COLOURS = ("red", "green", "blue")
"""The colour of the lines of the first, second and third pattern in
:func:`coloured_shapes`: the paper's R, G, B for its x-, y- and z-axis patterns."""


def coloured_shapes(spots: np.ndarray, shaped: np.ndarray) -> np.ndarray:
    """The paper's encoding: each pattern an RGB image, its lines in its axis's colour.

    Tiong et al. (2020) draw the lines of the x-, y- and z-axis patterns in red, green
    and blue over the greyscale raw pattern, so a line differs from a spot by its
    colour. Here pattern ``k`` becomes three channels: the raw pattern ``R_k`` in all
    three, except channel ``k`` (:data:`LINE_COLOURS`), which holds the shaped pattern
    ``S_k = min(R_k + lines, 255)`` (:func:`shape_patterns`). A spot is grey (equal
    channels); a line pixel is brighter in its own channel than in the other two;
    every channel is at least ``R_k``.

    Parameters
    ----------
    spots : numpy.ndarray
        ``(..., n, n, 3)`` raw patterns on the 0-255 scale.
    shaped : numpy.ndarray
        The same patterns shaped with grey lines (:func:`shape_patterns`).

    Returns
    -------
    numpy.ndarray
        ``(..., n, n, 9)`` in the dtype of ``shaped``: channels ``3k`` to ``3k + 2``
        are pattern ``k``'s red, green and blue.

    Raises
    ------
    ValueError
        If the shapes differ, are not ``(..., n, n, 3)``, or ``shaped < spots``
        somewhere (not a shaped version of these patterns).

    Notes
    -----
    Introduced in Chapter 6.
    """
    spots, shaped = _check_shaped(spots, shaped)
    grey = np.repeat(spots.astype(shaped.dtype), 3, axis=-1)  # R_k in channels 3k..3k+2
    own = 3 * np.arange(3) + np.arange(3)  # channel k of pattern k: 0, 4, 8
    grey[..., own] = shaped
    return grey


def paired_shapes(spots: np.ndarray, shaped: np.ndarray) -> np.ndarray:
    """Each pattern as two channels, its raw pattern and its shaped pattern (the course's).

    Like the paper's colours (:func:`coloured_shapes`) this keeps lines apart from
    spots: a line pixel is brighter in the second channel than in the first, a spot
    pixel equal in both. Unlike them, the line channel is the same for every pattern,
    so one trunk shared by the three streams finds the lines in one place.

    Parameters
    ----------
    spots, shaped : numpy.ndarray
        As in :func:`coloured_shapes`.

    Returns
    -------
    numpy.ndarray
        ``(..., n, n, 6)`` in the dtype of ``shaped``: channels ``2k`` and ``2k + 1``
        are pattern ``k``'s ``R`` and ``S``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    spots, shaped = _check_shaped(spots, shaped)
    out = np.empty(spots.shape[:-1] + (6,), dtype=shaped.dtype)
    out[..., 0::2] = spots
    out[..., 1::2] = shaped
    return out


def _check_shaped(spots, shaped) -> tuple[np.ndarray, np.ndarray]:
    spots, shaped = np.asarray(spots), np.asarray(shaped)
    if spots.shape != shaped.shape or spots.ndim < 3 or spots.shape[-1] != 3:
        raise ValueError(f"spots and shaped must both be (..., n, n, 3), got {spots.shape} "
                         f"and {shaped.shape}")  # fmt: skip
    if (shaped < spots).any():
        raise ValueError("shaped must be >= spots everywhere (S = R + lines)")
    return spots, shaped


def count_nodes(patterns: np.ndarray, threshold: float = 50) -> np.ndarray:
    """Number of nodes (:func:`find_nodes`) of every 2-D pattern in ``(..., n, n, C)``.

    Returns an int array of shape ``patterns.shape[:-3] + (C,)``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    patterns = np.asarray(patterns)
    if patterns.ndim < 3:
        raise ValueError(f"patterns must be (..., n, n, C), got shape {patterns.shape}")
    flat = np.moveaxis(patterns.reshape(-1, *patterns.shape[-3:]), -1, 1)
    counts = np.array([[len(find_nodes(p, threshold)[0]) for p in item] for item in flat])
    return counts.reshape(patterns.shape[:-3] + (patterns.shape[-1],))


def plot_shaping(pattern: np.ndarray, threshold: float = 50, factor: float = 1.7, axes=None):
    """The shaping algorithm step by step: pattern, nodes, joined pairs, shaped pattern.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    image = _pattern(pattern)
    centres, sizes = find_nodes(image, threshold)
    pairs = node_pairs(centres, factor, 2.0 * image.shape[0] / 64)
    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(13, 3.4), layout="constrained")
    axes[0].imshow(image, origin="lower", cmap="gray", vmin=0, vmax=255)
    axes[0].set_title("zone-axis pattern (0-255)", fontsize=10)
    axes[1].imshow(image >= threshold, origin="lower", cmap="gray")
    axes[1].scatter(centres[:, 1], centres[:, 0], s=4 * sizes, c="tab:red")
    axes[1].set_title(f"{len(centres)} nodes (>= {threshold:g})", fontsize=10)
    axes[2].imshow(np.zeros_like(image), origin="lower", cmap="gray")
    for i, j in pairs:
        axes[2].plot(*centres[[i, j]][:, ::-1].T, color="tab:orange", lw=1)
    axes[2].scatter(centres[:, 1], centres[:, 0], s=4 * sizes, c="tab:red", zorder=3)
    axes[2].set_title(f"{len(pairs)} pairs within {factor:g} x shortest", fontsize=10)
    axes[3].imshow(shape_pattern(image, threshold, factor), origin="lower", cmap="gray",
                   vmin=0, vmax=255)  # fmt: skip
    axes[3].set_title("shaped: S = R + lines", fontsize=10)
    for ax in axes:
        ax.set_xlabel("pixel")
        ax.set_ylabel("pixel")
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(-0.5, image.shape[0] - 0.5)
    return axes
