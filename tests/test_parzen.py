import numpy as np
import pytest

from gan_tf.metrics import parzen

HALF_LOG_TWO_PI = 0.5 * np.log(2.0 * np.pi)  # 0.9189385...


def test_log_density_by_hand_in_one_dimension():
    # One centre at 0, x = 0, sigma 1: log N(0; 0, 1) = -log sqrt(2 pi).
    np.testing.assert_allclose(parzen.log_density([[0.0]], [[0.0]], [1.0]), [[-HALF_LOG_TWO_PI]])
    # Centres 0 and 2, x = 1: both kernels give N(1; 0, 1), so the mean is that: -1/2 - log sqrt(2 pi).
    np.testing.assert_allclose(parzen.log_density([[1.0]], [[0.0], [2.0]], [1.0]), [[-0.5 - HALF_LOG_TWO_PI]])
    # sigma 0.5, x 0.5 from one centre: -1/2 (0.5/0.5)^2 - log(0.5 sqrt(2 pi)) = -0.5 + log 2 - 0.9189.
    np.testing.assert_allclose(parzen.log_density([[0.5]], [[0.0]], [0.5]), [[-0.5 + np.log(2.0) - HALF_LOG_TWO_PI]])


def test_log_density_matches_a_direct_sum_in_many_dimensions_and_chunks():
    rng = np.random.default_rng(0)
    points, centres = rng.uniform(size=(7, 50)), rng.uniform(size=(11, 50))
    sigmas = [0.2, 0.5]
    direct = np.array([[np.log(np.mean([np.prod(np.exp(-0.5 * ((x - c) / s) ** 2) / (s * np.sqrt(2 * np.pi)))
                                        for c in centres])) for x in points] for s in sigmas])
    np.testing.assert_allclose(parzen.log_density(points, centres, sigmas), direct, rtol=1e-10)
    np.testing.assert_allclose(parzen.log_density(points, centres, sigmas, chunk_size=3), direct, rtol=1e-10)


def test_log_density_far_from_every_centre_stays_finite():
    # 784 pixels all 1 against a black centre, sigma 0.1: the exponent is -39,200, which exp
    # alone underflows to 0; the log-mean-exp gives the closed form.
    value = parzen.log_density(np.ones((1, 784)), np.zeros((2, 784)), [0.1])[0, 0]
    np.testing.assert_allclose(value, -0.5 * 784 / 0.01 - 784 * np.log(0.1 * np.sqrt(2 * np.pi)))


def test_estimate_chooses_sigma_on_validation_and_reports_its_standard_error():
    rng = np.random.default_rng(1)
    samples = rng.integers(0, 256, size=(40, 4, 4, 1), dtype=np.uint8)
    near = samples[:10]  # validation images on the centres: the narrowest kernel fits them best
    far = rng.integers(0, 256, size=(10, 4, 4, 1), dtype=np.uint8)  # unrelated images: a wide one
    test = rng.integers(0, 256, size=(12, 4, 4, 1), dtype=np.uint8)
    assert parzen.parzen_estimate(samples, near, test)["sigma"] == pytest.approx(0.1)
    report = parzen.parzen_estimate(samples, far, test)
    assert report["sigma"] > 0.1
    best = max(report["validation"], key=report["validation"].get)
    assert float(best) == pytest.approx(report["sigma"], abs=1e-4)
    scores = parzen.log_density(test.reshape(12, -1) / 255.0, samples.reshape(40, -1) / 255.0, [report["sigma"]])[0]
    assert report["log_likelihood"] == pytest.approx(scores.mean())
    assert report["standard_error"] == pytest.approx(scores.std() / np.sqrt(12))
    assert (report["samples"], report["test_images"]) == (40, 12)


def test_pixels_are_scaled_to_the_unit_interval():
    np.testing.assert_allclose(parzen.as_unit_vectors(np.array([[[[0], [255]]]], np.uint8)), [[0.0, 1.0]])
    np.testing.assert_allclose(parzen.as_unit_vectors(np.full((1, 2, 2, 1), 0.5)), [[0.5] * 4])


def test_validation_and_test_are_disjoint_without_a_held_out_split():
    train = np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1)
    validation, test, rest = parzen.validation_and_test(train, num_test=8, validation_size=20)
    assert (len(validation), len(test), len(rest)) == (20, 8, 2)
    assert sorted(np.concatenate([validation, test, rest]).ravel()) == list(range(30))  # each image once
    held_out = 100 + np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1)
    validation, test, rest = parzen.validation_and_test(train, held_out, num_test=8, validation_size=20)
    assert sorted(test.ravel()) == list(range(100, 105))
    assert sorted(np.concatenate([validation, rest]).ravel()) == list(range(30))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\[N, D\] and \[M, D\]"):
        parzen.log_density(np.zeros((2, 3)), np.zeros((2, 4)), [0.1])
    with pytest.raises(ValueError, match="sigmas > 0"):
        parzen.log_density(np.zeros((2, 3)), np.zeros((2, 3)), [0.0])
