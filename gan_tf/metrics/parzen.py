"""The Gaussian Parzen window estimate of a generator's log-likelihood, as the GAN paper reports it.

Goodfellow et al. 2014 (Table 1, https://arxiv.org/abs/1406.2661), after Breuleux, Bengio &
Vincent 2011: put a Gaussian of width `sigma` on each of 10,000 generated images (pixels scaled
to [0, 1]), choose `sigma` on validation images from `logspace(-1, 0, 10)`, and report the mean
log-density of held-out images, in nats, with its standard error. The paper's MNIST figure for
its GAN is 225 +- 2 nats.

What the number does and does not say (Theis, van den Oord & Bethge 2016, "A note on the
evaluation of generative models", https://arxiv.org/abs/1511.01844): in 784 dimensions a Parzen
window from 10,000 samples is a poor density estimate; it mostly rewards samples that lie close
(in pixels) to held-out images, and it can rank models against their true likelihoods (a
k-means model beats real samples). Report it beside a likelihood model's exact bits/dim to show
that gap, not in place of it.
"""

import numpy as np

# The paper's grid of kernel widths (pixels in [0, 1]): logspace(-1, 0, 10), 0.1 to 1.
PAPER_SIGMAS = tuple(np.logspace(-1.0, 0.0, 10))


def as_unit_vectors(images):
    """uint8 `[N, H, W, C]` (or float in [0, 1]) as float64 rows `[N, H*W*C]` in [0, 1]."""
    images = np.asarray(images)
    rows = images.reshape(len(images), -1).astype(np.float64)
    return rows / 255.0 if images.dtype == np.uint8 else rows


def _squared_distances(points, centres):
    """`[len(points), len(centres)]` squared Euclidean distances, by one matrix product."""
    cross = points @ centres.T
    squared = (points * points).sum(1)[:, None] + (centres * centres).sum(1)[None, :] - 2.0 * cross
    return np.maximum(squared, 0.0)


def _log_mean_exp(values):
    """log(mean(exp(values))) along axis 1, without overflow."""
    peak = values.max(axis=1, keepdims=True)
    return peak[:, 0] + np.log(np.exp(values - peak).mean(axis=1))


def log_density(points, centres, sigmas, chunk_size=500):
    """The Parzen window's log-density (nats) of each of `points` for each width in `sigmas`.

    Args:
        points: `[N, D]` float rows (see `as_unit_vectors`).
        centres: `[M, D]` float rows: the kernel centres (the generated samples).
        sigmas: the kernel widths to evaluate; the distances are computed once for all.
        chunk_size: points per matrix product (memory `chunk_size x M` floats).

    Returns:
        float64 `[len(sigmas), N]`: `log (1/M) sum_i N(x; centre_i, sigma^2 I)`.
    """
    points, centres = np.asarray(points, np.float64), np.asarray(centres, np.float64)
    sigmas = np.asarray(sigmas, np.float64).reshape(-1)
    if points.ndim != 2 or centres.ndim != 2 or points.shape[1] != centres.shape[1]:
        raise ValueError(f"points and centres must be [N, D] and [M, D]. Received: {points.shape}, {centres.shape}")
    if len(centres) == 0 or not np.all(sigmas > 0):
        raise ValueError(f"need at least one centre and sigmas > 0. Received: {len(centres)} centres, sigmas {sigmas}")
    dimensions = points.shape[1]
    normaliser = dimensions * np.log(sigmas * np.sqrt(2.0 * np.pi))
    result = np.empty((len(sigmas), len(points)))
    for start in range(0, len(points), chunk_size):
        squared = _squared_distances(points[start : start + chunk_size], centres)
        for k, sigma in enumerate(sigmas):
            result[k, start : start + chunk_size] = _log_mean_exp(-0.5 * squared / sigma**2) - normaliser[k]
    return result


def parzen_estimate(samples, validation, test, sigmas=PAPER_SIGMAS):
    """The GAN paper's protocol: `sigma` chosen on `validation`, the mean log-density of `test`.

    Args:
        samples: generated images (uint8 `[M, H, W, C]`; the paper uses M = 10,000).
        validation: images to choose sigma on (the paper: 1,000 held out of training).
        test: held-out images to score.
        sigmas: the grid of widths (default: the paper's).

    Returns:
        `{"log_likelihood": mean nats, "standard_error", "sigma", "validation": {sigma: mean
        nats}, "samples", "test_images"}`.
    """
    centres = as_unit_vectors(samples)
    on_validation = log_density(as_unit_vectors(validation), centres, sigmas).mean(axis=1)
    sigma = float(np.asarray(sigmas)[int(np.argmax(on_validation))])
    scores = log_density(as_unit_vectors(test), centres, [sigma])[0]
    return {
        "log_likelihood": float(scores.mean()),
        "standard_error": float(scores.std() / np.sqrt(len(scores))),
        "sigma": sigma,
        "validation": {f"{s:.4f}": float(v) for s, v in zip(sigmas, on_validation)},
        "samples": int(len(centres)),
        "test_images": int(len(scores)),
    }


def validation_and_test(train_images, held_out_images=None, num_test=1000, validation_size=1000, seed=0):
    """The images `parzen_estimate` chooses sigma on and scores: `validation_size` drawn from the
    training images (the paper: 1,000 held out of MNIST's training set), and `num_test` held-out
    images, or, for data without a held-out split (`held_out_images` None), `num_test` other
    training images, disjoint from the validation ones.

    Returns:
        `(validation, test, rest)` uint8 arrays; `rest`: the training images in neither (real
        images to place the kernels on, for the estimate's real-data reference).
    """
    order = np.random.default_rng(seed).permutation(len(train_images))
    validation = train_images[np.sort(order[:validation_size])]
    if held_out_images is None:
        rest = order[validation_size:]
        if len(rest) == 0:
            raise ValueError(f"{len(train_images)} images leave none to score after {validation_size} for validation")
        return validation, train_images[np.sort(rest[:num_test])], train_images[np.sort(rest[num_test:])]
    keep = np.random.default_rng(seed + 1).permutation(len(held_out_images))[:num_test]
    return validation, held_out_images[np.sort(keep)], train_images[np.sort(order[validation_size:])]
