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


def mismatched_label_discriminator_loss(mismatched_logits):
    """Per-example loss that teaches D to reject real images paired with a wrong label.

    `-log(1 - D(x, y'))` with `y' != y`: the "matching-aware" term of Reed et al.'s GAN-CLS. Without
    it a conditional D can score realism alone and ignore the label; with it the only way to tell
    `(x, y)` from `(x, y')` is to check that the image shows its label, and G is pushed to draw
    the class it was asked for. Targets are 0, never smoothed.

    Reference:
        Reed et al. 2016, "Generative Adversarial Text to Image Synthesis", section 4.1,
        https://arxiv.org/abs/1605.05396

    Args:
        mismatched_logits: D's logits on real images with wrong labels, `[batch, ...]`.

    Returns:
        A `[batch]` tensor.
    """
    return _per_example_mean(_sigmoid_cross_entropy(ops.zeros_like(mismatched_logits), mismatched_logits))


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


def consistency_loss(logits, transformed_logits):
    """Per-example squared difference between D's logits on images and on transformed copies,
    `(D(T(x)) - D(x))^2`, averaged over any patch axes: the consistency regularization of Zhang
    et al. 2020 (arXiv 1910.12027), which bCR applies to real and generated images alike
    (Zhao et al. 2020, arXiv 2002.04724). Gradient flows through both.

    Returns:
        A `[batch]` tensor.
    """
    return _per_example_mean(ops.square(transformed_logits - logits))


def smallest_k_mask(values, population, k):
    """1.0 where an entry of `values` is among the `k` smallest of `population`, else 0.0.

    `values` is this replica's part of `population` (on one device, `population` itself), so
    the replicas of a global batch agree on which of their examples are kept. Top-k training
    keeps the fakes whose generator loss is smallest, those D rates most real (Sinha et al.
    2020). Ties with the k-th smallest are all kept.

    Args:
        values: `[batch]` tensor.
        population: `[global_batch]` tensor holding `values`.
        k: how many of `population` to keep, in `[1, global_batch]` (an int or int tensor).

    Returns:
        A `[batch]` tensor of 0s and 1s, in `values`' dtype.
    """
    threshold = ops.take(ops.sort(population), k - 1)
    return ops.cast(ops.less_equal(values, threshold), values.dtype)


def wasserstein_critic_loss(real_scores, fake_scores):
    """Per-example critic loss of the Wasserstein GAN: `D(G(z)) - D(x)`.

    Minimising it maximises the critic's estimate `E[D(x)] - E[D(G(z))]` of the Wasserstein-1
    distance, which is meaningful only for a 1-Lipschitz critic (weight clipping or a gradient
    penalty keeps it so). Scores are unbounded reals, not logits of a probability.

    Reference:
        Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", https://arxiv.org/abs/1701.07875

    Returns:
        A `[batch]` tensor.
    """
    return _per_example_mean(fake_scores) - _per_example_mean(real_scores)


def wasserstein_generator_loss(fake_scores):
    """Per-example generator loss of the Wasserstein GAN (and of the hinge GAN): `-D(G(z))`."""
    return -_per_example_mean(fake_scores)


def hinge_discriminator_loss(real_scores, fake_scores):
    """Per-example hinge loss: `max(0, 1 - D(x)) + max(0, 1 + D(G(z)))`.

    Reference:
        Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for
        Generative Adversarial Networks" (with `wasserstein_generator_loss` for G).

    Returns:
        A `[batch]` tensor.
    """
    return _per_example_mean(ops.relu(1.0 - real_scores)) + _per_example_mean(ops.relu(1.0 + fake_scores))


def gradient_penalty(critic, real_images, fake_images, interpolation_weights):
    """Per-example WGAN-GP penalty `(||grad_x D(x_hat)||_2 - 1)^2` on random interpolates.

    `x_hat = e * x + (1 - e) * G(z)` with one `e` per example (`interpolation_weights`, `[batch]`,
    drawn uniformly from [0, 1] by the caller), broadcast over the example's other axes, so any
    image rank works. The gradient is taken with a tape that the caller's tape records, so the
    penalty itself can be differentiated with respect to the critic's weights.

    Args:
        critic: a callable from images to scores (e.g. `functools.partial(D, training=True)`).
        real_images: `[batch, ...]`.
        fake_images: same shape.
        interpolation_weights: `[batch]` values in [0, 1].

    Returns:
        A `[batch]` tensor.

    Reference:
        Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
        https://arxiv.org/abs/1704.00028 (Algorithm 1, lambda = 10).
    """
    import tensorflow as tf

    rank = len(real_images.shape)
    weights = ops.reshape(ops.cast(interpolation_weights, real_images.dtype), (-1,) + (1,) * (rank - 1))
    interpolates = weights * real_images + (1.0 - weights) * fake_images
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = critic(interpolates)
    gradients = tape.gradient(scores, interpolates)
    norms = ops.sqrt(ops.sum(ops.square(ops.reshape(gradients, (ops.shape(gradients)[0], -1))), axis=1) + 1e-12)
    return ops.square(norms - 1.0)


def r1_penalty(discriminate, real_images):
    """Per-example R1 penalty `||grad_x D(x)||_2^2` at real images (the caller weights it by
    gamma / 2).

    Zero-centred at the data: D is pushed to be flat where the real images are, which keeps the
    game from circling around a D that changes fast there. The gradient is built where the
    caller's tape records it, so the penalty can be differentiated with respect to D's weights:
    with a tape when eager, with `tf.gradients` in a graph (a tape inside a `tf.cond` branch,
    where the lazy penalty runs, records nothing in TF 2.21: its gradient comes back None).
    For a D with several outputs per image (patches), of their sum.

    Args:
        discriminate: a callable from images to D's logits (e.g. `lambda x: D([x, labels])`).
        real_images: `[batch, ...]`.

    Returns:
        A `[batch]` tensor.

    Reference:
        Mescheder, Geiger & Nowozin 2018, "Which Training Methods for GANs do actually
        Converge?", https://arxiv.org/abs/1801.04406 (equation 9).
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        with tf.GradientTape() as tape:
            tape.watch(real_images)
            total = ops.sum(discriminate(real_images))
        gradients = tape.gradient(total, real_images)
    else:
        real_images = tf.identity(real_images)  # a tensor of this graph (a cond branch's own)
        gradients = tf.gradients(ops.sum(discriminate(real_images)), real_images)[0]
    return ops.sum(ops.square(ops.reshape(gradients, (ops.shape(gradients)[0], -1))), axis=1)


def auxiliary_classifier_loss(class_logits, labels):
    """Per-example softmax cross-entropy of D's class prediction (AC-GAN's `L_C` term).

    Args:
        class_logits: `[batch, num_classes]` logits of D's auxiliary classifier.
        labels: int `[batch]` classes.

    Returns:
        A `[batch]` tensor.

    Reference:
        Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier
        GANs", https://arxiv.org/abs/1610.09585 (equation 3).
    """
    return ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), class_logits, from_logits=True)


def orthogonal_regularization(kernels):
    """BigGAN's orthogonal regularization: `sum_W ||W^T W * (1 - I)||_F^2`.

    Each kernel is reshaped to `[-1, out]` (one column per output unit); only the off-diagonal
    entries of the Gram matrix are penalised, so columns are pushed toward orthogonality
    without constraining their norms. Computed as `||W W^T||_F^2 - sum_j ||w_j||^4` when W has
    fewer rows than columns (the same value, a much smaller product). A scalar; the caller weights it (1e-4 in the paper).

    Reference:
        Brock, Donahue & Simonyan 2018, "Large Scale GAN Training for High Fidelity Natural
        Image Synthesis", https://arxiv.org/abs/1809.11096 (equation 3).
    """
    total = 0.0
    for kernel in kernels:
        columns = ops.reshape(kernel, (-1, kernel.shape[-1]))
        rows, units = columns.shape
        # ||W^T W||_F = ||W W^T||_F, so the smaller Gram matrix gives the same total: a Dense
        # from 40 inputs to 6,272 units costs a 40x40 product, not a 6,272x6,272 one.
        gram = ops.matmul(columns, ops.transpose(columns)) if rows < units else ops.matmul(ops.transpose(columns), columns)
        squared_column_norms = ops.sum(ops.square(columns), axis=0)
        total = total + ops.sum(ops.square(gram)) - ops.sum(ops.square(squared_column_norms))
    return total


# ------------------------------------------------------------------- image-to-image losses


def least_squares_discriminator_loss(real_scores, fake_scores, real_label=1.0):
    """Per-example least-squares GAN discriminator loss: `(D(x) - t)^2 + D(G(x))^2`, `t = real_label`.

    Least squares pull D's scores toward the targets instead of saturating a sigmoid, which gives
    G gradients even on samples D already rejects; CycleGAN trains with it. The caller halves it
    (CycleGAN slows D down that way). `real_label` below 1 is one-sided label smoothing.

    Reference:
        Mao et al. 2017, "Least Squares Generative Adversarial Networks", equation 2 with
        a = 0, b = 1, https://arxiv.org/abs/1611.04076; Zhu et al. 2017 (CycleGAN), section 4.

    Returns:
        A `[batch]` tensor.
    """
    return _per_example_mean(ops.square(real_scores - real_label)) + _per_example_mean(ops.square(fake_scores))


def least_squares_generator_loss(fake_scores):
    """Per-example least-squares GAN generator loss: `(D(G(x)) - 1)^2`."""
    return _per_example_mean(ops.square(fake_scores - 1.0))


def l1_loss(outputs, targets):
    """Per-example mean absolute difference `mean |outputs - targets|` over every pixel.

    Pix2Pix adds it to the GAN loss (weight 100): L1 alone gives blurry but roughly right images
    (it is minimised by the median of the plausible outputs); the GAN term makes them sharp.

    Reference:
        Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
        equation 3, https://arxiv.org/abs/1611.07004
    """
    return _per_example_mean(ops.abs(outputs - targets))


def cycle_consistency_loss(images, reconstructions):
    """Per-example cycle-consistency loss `mean |F(G(x)) - x|`: translating there and back must
    give the image back (CycleGAN's equation 2; weight 10 in the paper)."""
    return l1_loss(reconstructions, images)


def identity_loss(images, mapped):
    """Per-example identity loss `mean |G(y) - y|` for `y` already in G's target domain: G should
    leave it alone (CycleGAN section 5.2, after Taigman et al. 2017; weight 0.5 x the cycle
    weight), which keeps colours and tones from drifting."""
    return l1_loss(mapped, images)


def content_loss(fake_features, real_features):
    """Per-example content loss `mean (phi(G(x)) - phi(y))^2` over a feature network's maps (or
    the pixels): SRGAN's perceptual term, which rewards outputs that a trained network sees as
    the target, not pixel-exact matches (which favour blur).

    Reference:
        Ledig et al. 2017 (SRGAN), equation 5, https://arxiv.org/abs/1609.04802
    """
    return _per_example_mean(ops.square(fake_features - real_features))


def feature_matching_loss(real_features, fake_features):
    """`||mean(f(x)) - mean(f(G(z)))||^2 / 2`: the batch means of real and generated features
    (or of the data themselves) pulled together (a scalar, over this replica's batch).

    G matches statistics of the data instead of only fooling D, which steadies training and
    fights collapse. MidiNet adds it twice to G's loss: on D's first-layer features (weight 0.1)
    and on the bars themselves (0.01), with TensorFlow's `l2_loss` (half the squared norm).

    Reference:
        Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.1,
        https://arxiv.org/abs/1606.03498; Yang, Chou & Yang 2017 (MidiNet), section 3.3.
    """
    difference = ops.mean(real_features, axis=0) - ops.mean(fake_features, axis=0)
    return 0.5 * ops.sum(ops.square(difference))


def symmetric_matching_loss(text_embeddings, image_embeddings, positives, temperature=0.1):
    """Per-example loss that pulls each caption's embedding towards the images it describes and
    away from the rest of the batch, and each image's towards its captions: the mean of a
    text-to-image and an image-to-text classification over the batch.

    With `S = t v^T / temperature` (`t`, `v` the L2-normalised embeddings, `[B, B]`) and targets
    spread evenly over the positives, example i's loss is
    `0.5 * [-sum_j P_ij/|P_i.| log softmax(S_i.)_j - sum_k P_ki/|P_.i| log softmax(S_.i)_k]`.
    `positives[i, j]` is 1 when caption i describes image j (at least the diagonal: a batch often
    holds several images that one caption fits, "a dark pullover").

    Reference:
        Reed, Akata, Lee & Schiele 2016, "Learning Deep Representations of Fine-Grained Visual
        Descriptions" (the symmetric structured joint embedding loss),
        https://arxiv.org/abs/1605.05395; in its batch-softmax form as in Radford et al. 2021.
    """
    t = text_embeddings / ops.maximum(ops.norm(text_embeddings, axis=-1, keepdims=True), 1e-12)
    v = image_embeddings / ops.maximum(ops.norm(image_embeddings, axis=-1, keepdims=True), 1e-12)
    scores = ops.matmul(t, ops.transpose(v)) / temperature
    positives = ops.cast(positives, scores.dtype)
    text_to_image = -ops.sum(positives / ops.sum(positives, axis=1, keepdims=True) * ops.log_softmax(scores, axis=1), axis=1)
    image_to_text = -ops.sum(positives / ops.sum(positives, axis=0, keepdims=True) * ops.log_softmax(scores, axis=0), axis=0)
    return 0.5 * (text_to_image + image_to_text)


def matching_aware_discriminator_loss(real_logits, fake_logits, wrong_logits, real_label=0.9, mismatch_weight=0.5,
                                      wrong_mask=None):
    """Per-example loss of a text-conditional D that must also reject real images with the wrong
    text: `BCE(D(x, t), real_label) + (1 - w) BCE(D(G(z, t), t), 0) + w m BCE(D(x, t'), 0)`.

    With `w = mismatch_weight = 0.5` this is StackGAN's (and GAN-CLS's) D loss, `log D(x, t) + 0.5
    [log(1 - D(G, t)) + log(1 - D(x, t'))]`; with 0, the plain game. `wrong_mask` `m` (per example,
    1 by default) drops the term where the "wrong" text `t'` happens to be the right one.

    Reference:
        Reed et al. 2016, "Generative Adversarial Text to Image Synthesis", Algorithm 1,
        https://arxiv.org/abs/1605.05396; Zhang et al. 2017 (StackGAN), section 3.
    """
    real_loss = _per_example_mean(_sigmoid_cross_entropy(ops.full_like(real_logits, real_label), real_logits))
    fake_loss = _per_example_mean(_sigmoid_cross_entropy(ops.zeros_like(fake_logits), fake_logits))
    wrong_loss = _per_example_mean(_sigmoid_cross_entropy(ops.zeros_like(wrong_logits), wrong_logits))
    if wrong_mask is not None:
        wrong_loss = wrong_loss * ops.cast(wrong_mask, wrong_loss.dtype)
    return real_loss + (1.0 - mismatch_weight) * fake_loss + mismatch_weight * wrong_loss
