"""Sample-quality metrics as pure numpy functions of features, probabilities and labels.

The features are a classifier's penultimate activations (`gan_tf.metrics.evaluation`): our own small
CNN per dataset, as TF-GAN's MNIST evaluation did, since no Inception weights can be had here.
Every metric should be read next to its floor: the same metric between two disjoint halves of
real data (`gan_tf.metrics.evaluation.evaluate` reports both).

References:
    Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium" (FID); Bińkowski et al. 2018, "Demystifying MMD GANs" (KID); Salimans et al.
    2016, "Improved Techniques for Training GANs" (Inception Score); Kynkäänniemi et al. 2019,
    "Improved Precision and Recall Metric for Assessing Generative Models".
"""

import warnings

import numpy as np
import scipy.linalg


def _as_matrix(features, name):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"`{name}` must be [num_samples >= 2, num_features]. Received shape {features.shape}")
    return features


def frechet_distance(features_a, features_b):
    """Fréchet distance between Gaussians fitted to two feature sets (FID on Inception features).

    `||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`.

    Args:
        features_a, features_b: `[n, d]` and `[m, d]`.

    Returns:
        A float >= 0 (0 for identical sets; `||shift||^2` for a shifted copy).
    """
    a, b = _as_matrix(features_a, "features_a"), _as_matrix(features_b, "features_b")
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        # Dead ReLU units make covariances singular; scipy warns, and the result is still right
        # (or non-finite, handled below).
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
        if not np.all(np.isfinite(covmean)):  # nudge both covariances off singularity
            offset = np.eye(len(cov_a)) * 1e-6
            covmean = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return float(max(distance, 0.0))


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(features_a, features_b):
    """Unbiased squared MMD with the cubic polynomial kernel `k(x, y) = (x.y / d + 1)^3`."""
    a, b = _as_matrix(features_a, "features_a"), _as_matrix(features_b, "features_b")
    n, m = len(a), len(b)
    k_aa, k_bb, k_ab = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
    term_aa = (k_aa.sum() - np.trace(k_aa)) / (n * (n - 1))
    term_bb = (k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
    return float(term_aa + term_bb - 2.0 * k_ab.mean())


def kernel_inception_distance(features_a, features_b, num_subsets=10, subset_size=1000, seed=0):
    """KID: the unbiased MMD^2 averaged over random subsets, with its standard deviation.

    Args:
        features_a, features_b: `[n, d]` and `[m, d]`.
        num_subsets: how many subsets to average over.
        subset_size: samples per subset (capped by the smaller set).
        seed: subset sampling seed.

    Returns:
        `(mean, std)` over subsets. Unbiased: about 0 (possibly below) for sets from one
        distribution. `std` is None when the subsets are both sets whole (neither has more
        than `subset_size` rows): every subset is then the same, and a spread over them would
        be rounding noise (~1e-14), not a measure of uncertainty.
    """
    a, b = _as_matrix(features_a, "features_a"), _as_matrix(features_b, "features_b")
    size = min(subset_size, len(a), len(b))
    if size == len(a) and size == len(b):
        return float(mmd2_unbiased(a, b)), None
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(num_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def classifier_score(probabilities, epsilon=1e-12):
    """The Inception Score with our classifier: `exp(E_x KL(p(y|x) || p(y)))`.

    1 when every sample gets the same prediction; the number of classes when predictions are
    confident and spread evenly over the classes.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"`probabilities` must be [num_samples, num_classes]. Received shape {p.shape}")
    marginal = p.mean(axis=0, keepdims=True)
    kl = np.sum(p * (np.log(p + epsilon) - np.log(marginal + epsilon)), axis=1)
    return float(np.exp(kl.mean()))


def _k_nearest_radii(features, k):
    distances = _pairwise_distances(features, features)
    return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself


def _pairwise_distances(x, y):
    squared = (x**2).sum(1)[:, None] + (y**2).sum(1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(squared, 0.0))


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall of the generated manifold (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls around its points with radius the distance to the
    point's k-th nearest neighbour in the same set. Precision: the share of generated samples
    inside the real manifold (are samples realistic?). Recall: the share of real samples inside
    the generated manifold (is the data's variety covered?).

    Returns:
        `(precision, recall)`, each in [0, 1].
    """
    real, fake = _as_matrix(real_features, "real_features"), _as_matrix(fake_features, "fake_features")
    if k < 1 or k >= min(len(real), len(fake)):
        raise ValueError(f"k must be in [1, {min(len(real), len(fake)) - 1}]. Received: k={k}")
    real_radii, fake_radii = _k_nearest_radii(real, k), _k_nearest_radii(fake, k)
    fake_to_real = _pairwise_distances(fake, real)
    precision = np.mean(np.any(fake_to_real <= real_radii[None, :], axis=1))
    recall = np.mean(np.any(fake_to_real.T <= fake_radii[None, :], axis=1))
    return float(precision), float(recall)


def class_histogram(predicted_labels, num_classes):
    """Share of samples per class, `[num_classes]` summing to 1."""
    counts = np.bincount(np.asarray(predicted_labels, dtype=np.int64), minlength=num_classes)[:num_classes]
    return counts / max(counts.sum(), 1)


def mode_coverage(predicted_labels, num_classes, real_distribution=None, min_share=None, epsilon=1e-12):
    """How many classes the samples cover, and how far their class mix is from the data's.

    Args:
        predicted_labels: the classifier's class for each generated sample.
        num_classes: number of classes.
        real_distribution: the data's class shares (default: uniform).
        min_share: a class counts as covered when it has at least this share of the samples
            (default: half its share under a uniform mix, `0.5 / num_classes`).

    Returns:
        dict with `classes_covered` (int), `min_share`, `kl_to_real` (KL(real || generated),
        nats; 0 when the mixes agree) and `histogram` (list of shares).
    """
    histogram = class_histogram(predicted_labels, num_classes)
    real = (
        np.full(num_classes, 1.0 / num_classes)
        if real_distribution is None
        else np.asarray(real_distribution, dtype=np.float64) / np.sum(real_distribution)
    )
    min_share = 0.5 / num_classes if min_share is None else min_share
    kl = np.sum(real * (np.log(real + epsilon) - np.log(histogram + epsilon)))
    return {
        "classes_covered": int(np.sum(histogram >= min_share)),
        "min_share": float(min_share),
        "kl_to_real": float(kl),
        "histogram": [float(h) for h in histogram],
    }


def label_accuracy(predicted_labels, requested_labels):
    """For conditional models: the share of samples classified as the class they were drawn for."""
    predicted, requested = np.asarray(predicted_labels), np.asarray(requested_labels)
    if predicted.shape != requested.shape:
        raise ValueError(f"Shapes differ: predicted {predicted.shape}, requested {requested.shape}")
    return float(np.mean(predicted == requested))


# The discrete Laplacian (4-neighbour): a second difference, large at edges and fine detail.
_LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian_energy(images):
    """Each image's mean squared Laplacian response (pixels scaled to [0, 1], channels averaged
    first), `[N]`: high for sharp edges and fine detail, low for blurred images.

    Args:
        images: `uint8 [N, H, W, C]` (H, W >= 3).
    """
    images = np.asarray(images, dtype=np.float64) / 255.0
    if images.ndim != 4 or min(images.shape[1:3]) < 3:
        raise ValueError(f"`images` must be [N, H, W, C] with H, W >= 3. Received shape {images.shape}")
    grey = images.mean(axis=3)
    response = sum(_LAPLACIAN[i, j] * grey[:, i : grey.shape[1] - 2 + i, j : grey.shape[2] - 2 + j]
                   for i in range(3) for j in range(3))
    return (response ** 2).mean(axis=(1, 2))


def sharpness(images, real_images):
    """Mean Laplacian energy of `images` over that of `real_images` (`laplacian_energy`): 1 for
    images as sharp as the data, below 1 for blurrier ones (a blur halves it quickly), above 1 for
    images with more high-frequency content than the data (noise, ringing)."""
    real = laplacian_energy(real_images).mean()
    if real <= 0:
        raise ValueError("The real images have no Laplacian energy (constant images): sharpness is undefined.")
    return float(laplacian_energy(images).mean() / real)


def centre_offset(images):
    """Each image's distance in pixels from its centre of mass (pixel values as mass, channels
    averaged) to the image's centre, `[N]`: augmentation that leaks into a GAN's samples
    (translation, cutout) shows as samples less centred than the data. A blank image's offset is 0.

    Args:
        images: `uint8 [N, H, W, C]`.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"`images` must be [N, H, W, C]. Received shape {images.shape}")
    mass = images.mean(axis=3)
    total = mass.sum(axis=(1, 2))
    rows = np.arange(mass.shape[1]) - (mass.shape[1] - 1) / 2.0
    columns = np.arange(mass.shape[2]) - (mass.shape[2] - 1) / 2.0
    safe_total = np.where(total > 0, total, 1.0)
    row_centre = (mass.sum(axis=2) * rows).sum(axis=1) / safe_total
    column_centre = (mass.sum(axis=1) * columns).sum(axis=1) / safe_total
    return np.where(total > 0, np.hypot(row_centre, column_centre), 0.0)


def brightness(images):
    """Each image's mean pixel value, scaled to [0, 1], `[N]` (colour augmentation that leaks
    shows as samples brighter, darker or more varied than the data)."""
    return np.asarray(images, dtype=np.float64).reshape(len(images), -1).mean(axis=1) / 255.0


def border_brightness(images, ratio=0.125):
    """Each image's mean pixel value, scaled to [0, 1], over its border: the rows and columns within
    `ratio` of a side from the edge (`round(side * ratio)`, at least 1; 0.125 is as far as
    DiffAugment's translation reaches), `[N]`. A translation's constant strips or a cutout that
    leak into samples show as a brighter border than the data's (digits: a black one).

    Args:
        images: `uint8 [N, H, W, C]`.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"`images` must be [N, H, W, C]. Received shape {images.shape}")
    height, width = images.shape[1:3]
    rows, columns = max(1, int(height * ratio + 0.5)), max(1, int(width * ratio + 0.5))
    border = np.ones((height, width), bool)
    border[rows:height - rows, columns:width - columns] = False
    return images[:, border].mean(axis=(1, 2)) / 255.0


def paired_metrics(outputs, targets):
    """How close each output is to its target, for image-to-image models with paired data:
    `{"l1", "psnr", "ssim"}` means over the pairs. `l1` is the mean absolute pixel difference with
    pixels in [0, 1]; `psnr` (dB) and `ssim` are `tf.image.psnr` and `tf.image.ssim` with
    `max_val=255` (SSIM's 11x11 Gaussian window needs sides of at least 11; below that it is None).

    Args:
        outputs, targets: `uint8 [N, H, W, C]` of the same shape.
    """
    import tensorflow as tf

    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.shape != targets.shape or outputs.ndim != 4:
        raise ValueError(f"outputs and targets must be [N, H, W, C] of one shape. Received {outputs.shape} and {targets.shape}")
    a, b = tf.constant(outputs, tf.float32), tf.constant(targets, tf.float32)
    # Identical images have infinite PSNR; it is capped at 100 dB so the mean stays finite.
    psnr = tf.minimum(tf.image.psnr(a, b, max_val=255.0), 100.0)
    ssim = tf.image.ssim(a, b, max_val=255.0) if min(outputs.shape[1:3]) >= 11 else None
    return {
        "l1": float(np.mean(np.abs(outputs.astype(np.float64) - targets.astype(np.float64))) / 255.0),
        "psnr": float(tf.reduce_mean(psnr)),
        "ssim": None if ssim is None else float(tf.reduce_mean(ssim)),
    }
