import numpy as np
import pytest

from gan_tf import metrics


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
