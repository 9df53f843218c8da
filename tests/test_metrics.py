import numpy as np
import pytest

from gan_tf.metrics import image_metrics as metrics


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 4))
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_a_shifted_copy_is_the_squared_shift():
    x = np.random.default_rng(0).normal(size=(500, 3))
    shift = np.array([1.0, -2.0, 0.5])
    assert metrics.frechet_distance(x, x + shift) == pytest.approx(1.0 + 4.0 + 0.25, rel=1e-6)


def test_fid_of_a_scaled_copy_matches_the_closed_form():
    # x against 2x: ||m - 2m||^2 + Tr(C + 4C - 2 * 2C) = ||m||^2 + Tr(C), with C = Cov(x).
    x = np.random.default_rng(1).normal(size=(2000, 2))
    expected = np.sum(x.mean(axis=0) ** 2) + np.trace(np.cov(x, rowvar=False))
    assert metrics.frechet_distance(x, 2 * x) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(2.0, rel=0.1)  # unit Gaussians: about d


def test_mmd_matches_a_hand_computation():
    a = np.array([[0.0], [1.0]])
    b = np.array([[2.0], [3.0]])
    k = lambda x, y: (x * y + 1.0) ** 3  # noqa: E731  d = 1
    hand = (2 * k(0, 1)) / 2 + (2 * k(2, 3)) / 2 - 2 * np.mean([k(0, 2), k(0, 3), k(1, 2), k(1, 3)])
    assert metrics.mmd2_unbiased(a, b) == pytest.approx(hand)


def test_kid_is_near_zero_for_one_distribution_and_large_for_another():
    rng = np.random.default_rng(0)
    same_mean, same_std = metrics.kernel_inception_distance(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)),
                                                            num_subsets=5, subset_size=200)
    far_mean, _ = metrics.kernel_inception_distance(rng.normal(size=(400, 8)), rng.normal(3, 1, size=(400, 8)),
                                                    num_subsets=5, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3 and same_std > 0
    assert far_mean > 100 * abs(same_mean)


def test_classifier_score_bounds():
    confident_spread = np.eye(4)[np.arange(40) % 4]
    assert metrics.classifier_score(confident_spread) == pytest.approx(4.0, rel=1e-6)
    all_one_class = np.eye(4)[np.zeros(40, dtype=int)]
    assert metrics.classifier_score(all_one_class) == pytest.approx(1.0, rel=1e-6)
    assert metrics.classifier_score(np.full((10, 4), 0.25)) == pytest.approx(1.0)


def test_precision_and_recall_on_a_toy_line():
    real = np.arange(10, dtype=float)[:, None]  # 0..9; k=1 radius 1 around every point
    inside = np.array([[2.5], [3.5], [4.5], [5.5]])
    outside = np.array([[50.0], [51.0], [52.0], [53.0]])
    precision, recall = metrics.precision_recall(real, np.concatenate([inside, outside]), k=1)
    assert precision == pytest.approx(0.5)
    # The fake balls (k=1: radius 1 inside each cluster) reach real points 2..6.
    assert recall == pytest.approx(0.5)
    assert metrics.precision_recall(real, real, k=3) == (1.0, 1.0)


def test_mode_coverage_counts_classes_and_kl():
    collapsed = metrics.mode_coverage(np.array([3] * 95 + [4] * 5), num_classes=10)
    assert collapsed["classes_covered"] == 2 and collapsed["histogram"][3] == pytest.approx(0.95)
    balanced = metrics.mode_coverage(np.arange(1000) % 10, num_classes=10)
    assert balanced["classes_covered"] == 10 and balanced["kl_to_real"] == pytest.approx(0.0, abs=1e-9)
    strict = metrics.mode_coverage(np.array([0] * 96 + [1] * 4), num_classes=2, min_share=0.05)
    assert strict["classes_covered"] == 1
    # KL(uniform over 2 || [0.75, 0.25]) by hand.
    kl = metrics.mode_coverage(np.array([0, 0, 0, 1]), num_classes=2)["kl_to_real"]
    assert kl == pytest.approx(0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))


def test_label_accuracy():
    assert metrics.label_accuracy([1, 2, 3, 3], [1, 2, 3, 4]) == 0.75
    with pytest.raises(ValueError, match="Shapes differ"):
        metrics.label_accuracy([1, 2], [1, 2, 3])


def test_kid_spread_is_undefined_when_every_subset_is_the_whole_set():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    mean, std = metrics.kernel_inception_distance(a, b, subset_size=1000)
    assert std is None
    assert mean == pytest.approx(metrics.mmd2_unbiased(a, b))
    _, spread = metrics.kernel_inception_distance(a, rng.normal(size=(80, 4)), num_subsets=4, subset_size=1000)
    assert spread is not None and spread > 0  # subsets of 50 of the 80 differ


def test_laplacian_energy_by_hand():
    # One white pixel at the centre of a black 3x3 image: the Laplacian there is -4 (in units of
    # 1 = white), and the one interior position is the only one measured: energy 16.
    image = np.zeros((1, 3, 3, 1), np.uint8)
    image[0, 1, 1, 0] = 255
    np.testing.assert_allclose(metrics.laplacian_energy(image), [16.0])
    # Constant images have none; a vertical edge x=1 at columns >= 2 of a 3x4 image: responses
    # +1 (column 1) and -1 (column 2) on the one interior row: mean of squares 1.
    edge = np.zeros((1, 3, 4, 3), np.uint8)
    edge[:, :, 2:] = 255
    np.testing.assert_allclose(metrics.laplacian_energy(edge), [1.0])
    np.testing.assert_allclose(metrics.laplacian_energy(np.full((2, 5, 5, 1), 80, np.uint8)), [0.0, 0.0])


def test_centre_offset_and_brightness_by_hand():
    images = np.zeros((4, 5, 5, 1), np.uint8)
    images[0, 2, 2] = 255  # one pixel at the centre: offset 0
    images[1, 0, 2] = 255  # two rows up: 2
    images[2, 0, 0], images[2, 4, 4] = 255, 255  # two corners balance: 0
    images[3, 1, 1] = 255  # one pixel diagonal from the centre: sqrt(2); image 4: blank, 0 by definition
    blank = np.zeros((1, 5, 5, 1), np.uint8)
    np.testing.assert_allclose(metrics.centre_offset(np.concatenate([images, blank])), [0.0, 2.0, 0.0, np.sqrt(2), 0.0],
                               atol=1e-12)
    # A 3-row image's centre is row 1; mass 3 units at row 0 and 1 at row 2: centre row 0.5, offset 0.5.
    weighted = np.zeros((1, 3, 1, 1), np.uint8)
    weighted[0, 0], weighted[0, 2] = 3, 1
    np.testing.assert_allclose(metrics.centre_offset(weighted), [0.5])
    np.testing.assert_allclose(metrics.brightness(images), [1 / 25, 1 / 25, 2 / 25, 1 / 25])
    np.testing.assert_allclose(metrics.brightness(np.full((2, 4, 4, 3), 51, np.uint8)), [0.2, 0.2])
    with pytest.raises(ValueError, match="must be \\[N, H, W, C\\]"):
        metrics.centre_offset(np.zeros((5, 5)))


def test_border_brightness_by_hand():
    images = np.zeros((3, 8, 8, 1), np.uint8)
    images[0, 3:5, 3:5] = 255  # a centred square: a black border
    images[1, 0, :] = 255  # the top row lit: 8 of the border's 28 pixels (1 pixel wide at 8 x 8)
    images[2] = 255
    np.testing.assert_allclose(metrics.border_brightness(images), [0.0, 8 / 28, 1.0])
    # 16 x 16: a border 2 pixels wide (256 - 12 x 12 = 112 pixels); the 4 x 4 centre lit does not count.
    wide = np.zeros((1, 16, 16, 1), np.uint8)
    wide[0, 6:10, 6:10] = 255
    wide[0, 1, 2:6] = 255
    np.testing.assert_allclose(metrics.border_brightness(wide), [4 / 112])
    with pytest.raises(ValueError, match="must be \\[N, H, W, C\\]"):
        metrics.border_brightness(np.zeros((8, 8)))


def test_sharpness_is_one_for_the_data_and_falls_with_blur():
    rng = np.random.default_rng(0)
    real = (rng.random((20, 16, 16, 1)) > 0.5).astype(np.uint8) * 255
    blurred = ((real[:, :-1].astype(float) + real[:, 1:]) / 2).astype(np.uint8)  # a 2-tap vertical blur
    blurred = ((blurred[:, :, :-1].astype(float) + blurred[:, :, 1:]) / 2).astype(np.uint8)
    assert metrics.sharpness(real, real) == pytest.approx(1.0)
    assert metrics.sharpness(blurred, real) < 0.5
    with pytest.raises(ValueError, match="no Laplacian energy"):
        metrics.sharpness(real, np.zeros_like(real))


def test_paired_metrics_by_hand():
    outputs = np.zeros((2, 16, 16, 1), np.uint8)
    targets = np.full((2, 16, 16, 1), 10, np.uint8)
    got = metrics.paired_metrics(outputs, targets)
    assert got["l1"] == pytest.approx(10 / 255)
    assert got["psnr"] == pytest.approx(10 * np.log10(255.0**2 / 100.0), rel=1e-5)  # MSE 100
    same = metrics.paired_metrics(targets, targets)
    assert same["l1"] == 0 and same["psnr"] == 100.0 and same["ssim"] == pytest.approx(1.0)
    assert metrics.paired_metrics(outputs[:, :8, :8], targets[:, :8, :8])["ssim"] is None  # below SSIM's window
    with pytest.raises(ValueError, match="one shape"):
        metrics.paired_metrics(outputs, targets[:1])
