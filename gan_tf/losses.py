"""GAN losses as small pure functions of discriminator logits.

Each function returns the **per-example** loss (shape `[batch]`), averaging over any
non-batch axes so that patch discriminators work unchanged. Reduce it to a scalar with
`tf.nn.compute_average_loss` inside `train_step`: that divides by the *global* batch
size, which is what keeps gradient magnitudes right when replicas' gradients are summed
under `tf.distribute`.

Naming follows TF-GAN: `<name>_discriminator_loss` / `<name>_generator_loss`.

Reference:
    Goodfellow et al. 2014, "Generative Adversarial Nets" (minimax value and the
    non-saturating generator loss); Salimans et al. 2016, "Improved Techniques for
    Training GANs" (one-sided label smoothing).
"""

from keras import ops


def _per_example_mean(values):
    """Mean over every axis but the first, so `[batch, ...]` becomes `[batch]`."""
    values = ops.reshape(values, (ops.shape(values)[0], -1))
    return ops.mean(values, axis=1)


def _sigmoid_cross_entropy(labels, logits):
    """Elementwise, numerically stable sigmoid cross-entropy from logits."""
    labels = ops.cast(labels, logits.dtype)
    return ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def minimax_discriminator_loss(real_logits, fake_logits, real_label=0.9):
    """Per-example discriminator loss of the original GAN game, with label smoothing.

    `-[t log D(x) + (1 - t) log(1 - D(x))] - log(1 - D(G(z)))` where `t = real_label`.
    With `real_label=1` this is exactly `-log D(x) - log(1 - D(G(z)))`; below 1 it is
    one-sided label smoothing: only the real targets are softened, fake targets stay 0.

    Args:
        real_logits: D's logits on real data, `[batch, ...]`.
        fake_logits: D's logits on generated data, same shape.
        real_label: target probability for real data, in (0, 1].

    Returns:
        A `[batch]` tensor.
    """
    real_loss = _sigmoid_cross_entropy(ops.full_like(real_logits, real_label), real_logits)
    fake_loss = _sigmoid_cross_entropy(ops.zeros_like(fake_logits), fake_logits)
    return _per_example_mean(real_loss) + _per_example_mean(fake_loss)


def minimax_generator_loss(fake_logits):
    """Per-example non-saturating generator loss, `-log D(G(z))` (targets are 1).

    The saturating `log(1 - D(G(z)))` gives G no gradient early in training, when D
    rejects its samples easily; Goodfellow et al. (2014, section 3) train G to maximise
    `log D(G(z))` instead. G's targets are never smoothed.

    Args:
        fake_logits: D's logits on generated data, `[batch, ...]`.

    Returns:
        A `[batch]` tensor.
    """
    return _per_example_mean(_sigmoid_cross_entropy(ops.ones_like(fake_logits), fake_logits))
