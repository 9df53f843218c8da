"""Likelihoods of 8-bit images, as small pure functions: what the likelihood-based models (the VAE)
are trained on and measured by, next to the GANs, which have none.

Every function returns **per-example** values (shape `[batch]`) in nats, summed over the pixels
and channels of an image; `bits_per_dim` turns a log-likelihood into the figure papers report.

References:
    Salimans et al. 2017, "PixelCNN++", https://arxiv.org/abs/1701.05517 (the discretised
    logistic); Kingma & Welling 2013, "Auto-Encoding Variational Bayes",
    https://arxiv.org/abs/1312.6114 (the Gaussian KL term); Burda, Grosse & Salakhutdinov 2015,
    "Importance Weighted Autoencoders", https://arxiv.org/abs/1509.00519.
"""

import math

from keras import ops

# 8-bit pixels: 256 levels.
LEVELS = 256


def _float32(*values):
    return [ops.cast(value, "float32") for value in values]


def _sum_per_example(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=1)


def discretized_logistic_log_likelihood(images, mean, log_scale, value_range=(-1.0, 1.0)):
    """`log p(x)` of 8-bit images under a logistic per pixel, discretised to the 256 levels.

    Pixel values are the 256 levels of `value_range` (0 -> low, 255 -> high, bins of width
    `(high - low) / 255` centred on each level). Level k gets the logistic's mass on its bin,
    `sigmoid((x + b/2 - mu) / s) - sigmoid((x - b/2 - mu) / s)`, the lowest level the mass below
    its upper edge and the highest the mass above its lower edge, so the 256 probabilities of a
    pixel sum to 1 and the result is a true log-probability of the 8-bit image (comparable in
    bits per dimension with any other model of 8-bit data).

    Args:
        images: `[batch, ...]` on the levels of `value_range`.
        mean: `mu`, same shape (or broadcastable).
        log_scale: `log s`, broadcastable to `images`.
        value_range: `(low, high)` of the pixel levels.

    Returns:
        `[batch]` log-likelihoods in nats.
    """
    low, high = value_range
    half_bin = (high - low) / (LEVELS - 1) / 2.0
    images, mean, log_scale = _float32(images, mean, log_scale)
    centred = images - mean
    inverse_scale = ops.exp(-log_scale)
    upper = inverse_scale * (centred + half_bin)
    lower = inverse_scale * (centred - half_bin)
    log_cdf_upper = upper - ops.softplus(upper)  # log sigmoid(upper): the lowest level's mass
    log_survival_lower = -ops.softplus(lower)  # log (1 - sigmoid(lower)): the highest level's
    mass = ops.sigmoid(upper) - ops.sigmoid(lower)
    # Where the bin's mass underflows, its density at the centre times the bin width.
    middle = inverse_scale * centred
    log_density_mass = middle - log_scale - 2.0 * ops.softplus(middle) + math.log(2.0 * half_bin)
    inner = ops.where(mass > 1e-5, ops.log(ops.maximum(mass, 1e-12)), log_density_mass)
    log_probability = ops.where(
        images < low + half_bin, log_cdf_upper, ops.where(images > high - half_bin, log_survival_lower, inner)
    )
    return _sum_per_example(log_probability)


def gaussian_kl_divergence(mean, log_variance):
    """`KL(N(mean, exp(log_variance)) || N(0, I))` per example, in nats:
    `0.5 * sum(exp(log_variance) + mean^2 - 1 - log_variance)`."""
    mean, log_variance = _float32(mean, log_variance)
    return 0.5 * _sum_per_example(ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance)


def gaussian_log_density(values, mean=0.0, log_variance=0.0):
    """`log N(values; mean, exp(log_variance))` per example (summed over the last axis)."""
    values, mean, log_variance = _float32(values, mean, log_variance)
    squared = ops.square(values - mean) * ops.exp(-log_variance)
    return -0.5 * ops.sum(squared + log_variance + math.log(2.0 * math.pi), axis=-1)


def importance_weighted_bound(log_weights):
    """`log (1/k) sum_i exp(log_weights[:, i])`: the IWAE bound on `log p(x)` from k samples
    `z_i ~ q(z|x)` with `log_weights = log p(x|z_i) + log p(z_i) - log q(z_i|x)`, `[batch, k]`.
    With k = 1 it is the ELBO of that sample; it rises towards `log p(x)` as k grows."""
    (log_weights,) = _float32(log_weights)
    k = ops.shape(log_weights)[1]
    return ops.logsumexp(log_weights, axis=1) - ops.log(ops.cast(k, log_weights.dtype))


def bits_per_dim(log_likelihood, dimensions):
    """`-log p(x) / (dimensions * ln 2)`: nats per image to bits per pixel and channel."""
    return -log_likelihood / (dimensions * math.log(2.0))
