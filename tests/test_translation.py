"""Image-to-image data (pairs, unpaired domains, the built-ins), Pix2Pix, and the tools on them."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from gan_tf.data import builtin as gan_data
from gan_tf.data import pairs as translation_data
from gan_tf.data import DatasetError, DatasetInfo
from gan_tf.nn.layers import SeededDropout
from gan_tf.models.pix2pix import Pix2Pix, unet_depth
from gan_tf.data import open_source

_FASHION = pytest.mark.skipif(not os.path.isdir(gan_data.DEBIAN_FASHION_MNIST_DIR),
                              reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it)")


def _write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(np.asarray(image, np.uint8)))


def _pair_images(count, seed=0):
    """`count` random 32x32 greyscale inputs and their targets: the input inverted."""
    inputs = np.random.default_rng(seed).integers(0, 256, size=(count, 32, 32, 1), dtype=np.uint8)
    return inputs, 255 - inputs


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    """pix2pix's layout: train/ and test/ of `input | target` files, and one corrupt file."""
    root = str(tmp_path_factory.mktemp("pairs"))
    inputs, targets = _pair_images(40)
    for i in range(40):
        split = "train" if i < 32 else "test"
        _write_png(os.path.join(root, split, f"{i:03d}.png"), np.concatenate([inputs[i], targets[i]], axis=1))
    with open(os.path.join(root, "train", "broken.png"), "wb") as f:
        f.write(b"not a png")
    return root


def _batches(source, count, **options):
    return [tuple(t.numpy() for t in (a, b, la, lb)) for (a, b), (la, lb) in source.dataset(**options).take(count)]


# ---------------------------------------------------------------------------------- data


def test_side_by_side_pairs_read_with_their_split_and_a_corrupt_file_skipped(side_by_side, caplog):
    source = open_source(f"pairs:{side_by_side}")
    inputs, targets = _pair_images(40)
    assert source.info.pairing == "paired" and source.info.source_shape == (32, 32, 1)
    assert source.num_examples == 32 and "1 image file(s) that do not decode" in caplog.text
    np.testing.assert_array_equal(source.inputs, inputs[:32])
    np.testing.assert_array_equal(source.images, targets[:32])
    np.testing.assert_array_equal(source.info.examples.inputs, inputs[32:])
    np.testing.assert_array_equal(source.info.examples.targets, targets[32:])
    reverse = open_source(f"pairs:{side_by_side}:BtoA")
    np.testing.assert_array_equal(reverse.inputs, targets[:32])


def test_pairs_matched_by_name_hold_out_a_tenth_and_warn_about_orphans(tmp_path, caplog):
    inputs, targets = _pair_images(20)
    for i in range(20):
        _write_png(str(tmp_path / "A" / f"{i:02d}.png"), inputs[i])
        _write_png(str(tmp_path / "B" / f"{i:02d}.png"), targets[i])
    _write_png(str(tmp_path / "A" / "orphan.png"), inputs[0])
    source = open_source(f"pairs:{tmp_path}")
    assert "1 file(s)" in caplog.text and "no partner" in caplog.text
    assert len(source.inputs) == 18 and len(source.info.examples.inputs) == 2
    np.testing.assert_array_equal(source.images, 255 - source.inputs)  # still paired
    np.testing.assert_array_equal(source.info.examples.targets, 255 - source.info.examples.inputs)


def test_unpaired_folders_read_both_domains(tmp_path):
    a, _ = _pair_images(12, seed=1)
    b, _ = _pair_images(9, seed=2)
    for domain, images in (("trainA", a[:10]), ("testA", a[10:]), ("trainB", b)):
        for i, image in enumerate(images):
            _write_png(str(tmp_path / domain / f"{i}.png"), image)
    source = open_source(f"unpaired:{tmp_path}")
    assert source.info.pairing == "unpaired" and not source.info.examples.aligned
    assert (len(source.inputs), len(source.images)) == (10, 8)  # testB missing: a tenth of trainB held out
    assert len(source.info.examples.inputs) == 2 and len(source.info.examples.targets) == 1
    assert source.num_examples == 10  # an epoch is a pass over the larger domain


@pytest.mark.parametrize(
    "spec, message",
    [("pairs:/no/such/folder", "Paired-image folder not found"), ("unpaired:/no/such/folder", "Unpaired-image folder not found")],
)
def test_missing_translation_folders_fail_with_their_name(spec, message):
    with pytest.raises(DatasetError, match=message):
        open_source(spec)


def test_a_folder_without_pairs_is_refused(tmp_path):
    _write_png(str(tmp_path / "odd.png"), np.zeros((8, 7, 1)))
    with pytest.raises(DatasetError, match="No image pairs"):
        open_source(f"pairs:{tmp_path}")


def test_paired_augmentation_moves_both_halves_alike_and_resumes_exactly(side_by_side):
    source = open_source(f"pairs:{side_by_side}")
    source.images = source.inputs.copy()  # targets equal to inputs: any difference is the augmentation's
    plain = open_source(f"pairs:{side_by_side}")
    plain.images, plain.augment = plain.inputs.copy(), ()
    batches = _batches(source, 6, batch_size=8, seed=3, repeat=True)
    for a, b, _, _ in batches:
        np.testing.assert_array_equal(a, b)
    unaugmented = _batches(plain, 6, batch_size=8, seed=3, repeat=True)
    assert not np.array_equal(batches[0][0], unaugmented[0][0])
    resumed = _batches(source, 2, batch_size=8, seed=3, repeat=True, start_batch=4)
    for got, expected in zip(resumed, batches[4:]):
        np.testing.assert_array_equal(got[0], expected[0])


def test_unpaired_domains_are_drawn_in_their_own_orders_and_resume_exactly():
    source = open_source("thin2bold_mnist")
    batches = _batches(source, 5, batch_size=16, seed=0, repeat=True)
    assert not np.array_equal(batches[0][2], batches[0][3])  # labels of A and B: different digits
    resumed = _batches(source, 2, batch_size=16, seed=0, repeat=True, start_batch=3)
    for got, expected in zip(resumed, batches[3:]):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)


def test_thin2bold_domains_are_disjoint_halves_with_thickened_strokes():
    images, labels = gan_data.load_arrays("mnist_5k")
    halves = translation_data._thin2bold_halves()
    sizes = {name: len(part[0]) for name, part in halves.items()}
    assert sizes == {"trainA": 2250, "testA": 250, "trainB": 2250, "testB": 250}
    for name in ("testA", "testB"):
        assert np.array_equal(np.bincount(halves[name][1]), np.full(10, 25))
    originals = {image.tobytes() for image in images}
    thickened = {image.tobytes() for image in translation_data.thicken(images)}
    a = {image.tobytes() for part in ("trainA", "testA") for image in halves[part][0]}
    b = {image.tobytes() for part in ("trainB", "testB") for image in halves[part][0]}
    assert a <= originals and b <= thickened
    partners_of_a = {translation_data.thicken(np.frombuffer(x, np.uint8).reshape(1, 28, 28, 1))[0].tobytes() for x in a}
    assert not partners_of_a & b  # no B digit is an A digit thickened


def test_thicken_dilates_by_one_pixel():
    image = np.zeros((1, 5, 5, 1), np.uint8)
    image[0, 2, 2, 0] = 200
    thick = translation_data.thicken(image)[0, ..., 0]
    assert (thick[1:4, 1:4] == 200).all() and thick.sum() == 9 * 200


def test_edge_map_marks_the_outline_of_a_square():
    image = np.zeros((1, 12, 12, 1), np.uint8)
    image[0, 3:9, 3:9] = 255
    edges = translation_data.edge_map(image)[0, ..., 0]
    assert set(np.unique(edges)) == {0, 255}
    assert edges[0].max() == 0 and edges[6, 6] == 0  # far outside and deep inside: no edge
    assert edges[5, 3] == 255 and edges[3, 5] == 255  # on the square's border


@_FASHION
def test_edges2fashion_pairs_each_padded_item_with_its_edge_map():
    source = open_source("edges2fashion")
    items, labels = gan_data.load_arrays("fashion_mnist", split="test")
    examples = source.info.examples
    assert source.info.image_shape == (32, 32, 1) and source.num_examples == 60000 and examples.aligned
    assert source.info.class_names == gan_data.DATASETS["fashion_mnist"].class_names
    first = np.sort(np.random.default_rng(0).permutation(10000)[: translation_data.MAX_EXAMPLES])[0]
    np.testing.assert_array_equal(examples.targets[0, 2:30, 2:30], items[first])
    assert examples.input_labels[0] == labels[first]
    np.testing.assert_array_equal(examples.inputs[:5], translation_data.edge_map(examples.targets[:5]))


# ----------------------------------------------------------------------------- pix2pix


@pytest.mark.parametrize("side, depth", [(32, 5), (64, 6), (28, 2), (256, 8), (512, 8)])
def test_unet_depth_halves_as_far_as_the_sides_allow(side, depth):
    assert unet_depth((side, side, 3)) == depth


def test_unet_depth_refuses_sides_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        unet_depth((30, 30, 1))


@pytest.mark.parametrize("side", [32, 64])
def test_unet_skips_join_decoder_and_encoder_levels_of_one_size(side):
    model = Pix2Pix(source_shape=(side, side, 1), image_shape=(side, side, 3), width=4, seed=0)
    skips = [layer for layer in model.generator.layers if layer.name.startswith("skip_")]
    depth = unet_depth((side, side))
    assert len(skips) == depth - 1
    for layer in skips:
        level = int(layer.name.split("_")[1])
        decoder, encoder = (tuple(t.shape[1:]) for t in layer.input)
        assert decoder[:2] == encoder[:2] == (side >> (level + 1),) * 2
        assert decoder[2] == encoder[2] == 4 * min(2**level, 8)
    assert model.generator.output_shape == (None, side, side, 3)


def test_seeded_dropout_masks_follow_each_examples_seed():
    layer = SeededDropout(0.5, salt=1)
    x = tf.ones([3, 4, 4, 8])
    first = layer([x, tf.constant([[1, 2], [3, 4], [1, 2]])]).numpy()
    np.testing.assert_array_equal(first[0], first[2])  # same seed, same mask
    assert not np.array_equal(first[0], first[1])
    alone = layer([x[:1], tf.constant([[1, 2]])]).numpy()
    np.testing.assert_array_equal(alone[0], first[0])  # whatever else is in the batch
    assert set(np.unique(first)) == {0.0, 2.0}  # kept units scaled by 1 / (1 - rate)
    other_salt = SeededDropout(0.5, salt=2)([x, tf.constant([[1, 2]])]).numpy()
    assert not np.array_equal(other_salt[0], first[0])


def _tiny_pix2pix(**kwargs):
    model = Pix2Pix(source_shape=(32, 32, 1), image_shape=(32, 32, 1), width=4, seed=0, **kwargs)
    model.compile_optimizers({})
    return model


def test_pix2pix_trains_on_pairs_and_l1_only_leaves_d_untouched(side_by_side):
    source = open_source(f"pairs:{side_by_side}")
    l1_only = _tiny_pix2pix(gan_weight=0.0)
    before = [w.copy() for w in l1_only.discriminator.get_weights()]
    g_before = [w.copy() for w in l1_only.generator.get_weights()]
    history = l1_only.fit(source.dataset(8, seed=0, repeat=True), epochs=1, steps_per_epoch=3, verbose=0).history
    trainable = {id(v) for v in l1_only.discriminator.trainable_variables}
    for variable, old in zip(l1_only.discriminator.weights, before):
        if id(variable) in trainable:
            np.testing.assert_array_equal(variable.numpy(), old)
    assert any(not np.array_equal(new, old) for new, old in zip(l1_only.generator.get_weights(), g_before))
    assert history["g_loss"][-1] == pytest.approx(100.0 * history["l1"][-1], rel=1e-5)
    full = _tiny_pix2pix()
    before = [w.copy() for w in full.discriminator.get_weights()]
    logs = full.fit(source.dataset(8, seed=0, repeat=True), epochs=1, steps_per_epoch=3, verbose=0).history
    assert all(np.isfinite(values[-1]) for values in logs.values())
    assert any(not np.array_equal(new, old) for new, old in zip(full.discriminator.get_weights(), before))


def test_pix2pix_refuses_data_it_cannot_learn_from():
    with pytest.raises(ValueError, match="needs image-to-image data"):
        Pix2Pix.from_data(DatasetInfo((32, 32, 1), 10, tuple("abcdefghij")))
    unpaired = DatasetInfo((32, 32, 1), 0, (), source_shape=(32, 32, 1), pairing="unpaired")
    with pytest.raises(ValueError, match="learns from .input, target. pairs"):
        Pix2Pix.from_data(unpaired)


def test_pix2pix_config_round_trips_and_seeded_translation_is_reproducible():
    model = _tiny_pix2pix(l1_weight=50.0, dropout=0.25, batch_norm_momentum=0.99, decay_fraction=0.5)
    clone = Pix2Pix.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    momenta = {layer.momentum for layer in clone.generator.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {0.99}
    with pytest.raises(ValueError, match="`batch_norm_momentum` must be in \\[0, 1\\)"):
        _tiny_pix2pix(batch_norm_momentum=1.0)
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(model.translate(images, seed=4), model.translate(images, seed=4))
    assert not np.array_equal(model.translate(images, seed=4), model.translate(images, seed=5))
    # The same images in a smaller batch: the same translation, up to the rounding of kernels
    # that some CPUs pick by batch size (1e-10 apart on one machine).
    np.testing.assert_allclose(model.translate(images[:2], seed=4), model.translate(images, seed=4)[:2], atol=1e-7)


def test_pix2pix_decay_fraction_decays_both_rates_over_the_planned_runs_end():
    from gan_tf.models.translation import ConstantThenLinearDecay

    def rates(model):
        return [optimizer._learning_rate for optimizer in model.default_optimizers().values()]

    never_told = Pix2Pix(width=4, decay_fraction=0.25)  # no run length: the paper's constant rate
    paper = Pix2Pix(width=4)
    paper.plan_training(400)
    for rate in rates(never_told) + rates(paper):
        assert not isinstance(rate, ConstantThenLinearDecay)
        assert float(keras.ops.convert_to_numpy(rate)) == pytest.approx(2e-4)
    model = Pix2Pix(width=4, decay_fraction=0.25)
    model.plan_training(400)  # 300 constant steps, then 100 down to 0
    for schedule in rates(model):
        assert [float(schedule(step)) for step in (0, 300, 350, 400)] == pytest.approx([2e-4, 2e-4, 1e-4, 0.0])
    with pytest.raises(ValueError, match="`decay_fraction` must be in \\[0, 1\\]"):
        Pix2Pix(width=4, decay_fraction=1.5)


def _run(script, *flags, cwd):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, script), *flags], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_pix2pix_through_train_export_serving_generate_and_evaluate(tmp_path, side_by_side):
    completed = _run("train.py", "--model=pix2pix", f"--dataset=pairs:{side_by_side}", "--epochs=1",
                     "--steps_per_epoch=2", "--batch_size=8", "--model_arg=width=4", "--eval_every=0",
                     f"--workdir={tmp_path / 'run'}", f"--export_dir={tmp_path / 'export'}", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "pairs" in completed.stdout and os.path.exists(tmp_path / "run" / "samples" / "epoch_0001.png")
    export = str(tmp_path / "export" / "1")
    signatures = tf.saved_model.load(export).signatures
    assert {"serving_default", "translate", "translate_seeded", "metadata"} <= set(signatures)
    images = open_source(f"pairs:{side_by_side}").info.examples.inputs[:3]
    outputs = signatures["serving_default"](images_uint8=tf.constant(images))
    assert outputs["images_uint8"].shape == (3, 32, 32, 1) and outputs["images"].dtype == tf.float32
    seeded = signatures["translate_seeded"](images_uint8=tf.constant(images), seed=tf.constant(7, tf.int64))
    model = keras.saving.load_model(str(tmp_path / "run" / "checkpoints" / "epoch_0001.keras"))
    np.testing.assert_allclose(seeded["images"].numpy(), model.translate(model.scaled(images), seed=7), atol=1e-5)
    # A seeded translation sent in chunks ([seed, first_index]) gives the images of one Keras call.
    later = signatures["translate_seeded"](images_uint8=tf.constant(images[1:]), seed=tf.constant([7, 1], tf.int64))
    np.testing.assert_array_equal(later["images_uint8"].numpy(), seeded["images_uint8"].numpy()[1:])
    from gan_tf.serving.sampling import translate_local

    np.testing.assert_array_equal(translate_local(export, images, seed=7, batch_size=2), seeded["images_uint8"].numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"seed must be an int64 scalar or \[seed, first_index\]"):
        signatures["translate_seeded"](images_uint8=tf.constant(images), seed=tf.constant([7, 1, 2], tf.int64))
    for bad, message in ((np.zeros((2, 28, 28, 1)), "must be 32x32 pixels"), (np.zeros((2, 32, 32, 3)), "1 channel"),
                         (np.zeros((32, 32, 1)), "rank 4")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures["serving_default"](images_uint8=tf.constant(bad, tf.uint8))
    metadata = json.loads(signatures["metadata"]()["metadata_json"].numpy())
    assert metadata["translation"]["default"] == "translate" and metadata["source_shape"] == [32, 32, 1]

    _write_png(str(tmp_path / "in" / "edge.png"), images[0])
    completed = _run("generate.py", f"--model_path={export}", f"--input={tmp_path / 'in' / 'edge.png'}",
                     f"--output={tmp_path / 'out'}", "--seed=7", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    written = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out" / "edge.png"))).numpy()
    np.testing.assert_array_equal(written, seeded["images_uint8"].numpy()[0])
    refused = _run("generate.py", f"--model_path={export}", f"--input={tmp_path / 'missing'}", cwd=tmp_path)
    assert refused.returncode == 2 and "No image file or folder" in refused.stderr and "Traceback" not in refused.stderr

    completed = _run("evaluate.py", f"--model_path={export}", f"--dataset=pairs:{side_by_side}", "--num_samples=8",
                     f"--output={tmp_path / 'metrics.json'}", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert {"l1", "psnr", "ssim", "fid"} <= set(report["generated"]) and "psnr" in report["baseline"]
    assert "PSNR (dB)" in completed.stdout and "baseline" in completed.stdout


def test_a_translation_model_refuses_plain_images_before_training(tmp_path):
    from gan_tf.training import TrainConfig, train

    with pytest.raises(ValueError, match="needs image-to-image data"):
        train(TrainConfig(model="pix2pix", epochs=1, steps_per_epoch=1, verbose=0, workdir=str(tmp_path / "run"),
                          export_dir=str(tmp_path / "export")))
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


# ---------------------------------------------------------------------------- cyclegan


def test_image_pool_by_hand():
    from gan_tf.nn.layers import ImagePool

    pool = ImagePool(2, (1, 1, 1))
    x = lambda *values: np.array(values, np.float32).reshape(-1, 1, 1, 1)  # noqa: E731
    # x1, x2 fill the pool and are shown as they are; x3 (draw 0.2 < 0.5) is swapped with slot 1 (x2).
    shown = pool.query(x(1, 2, 3), np.array([0.9, 0.9, 0.2], np.float32), np.array([0, 0, 1], np.int32))
    np.testing.assert_array_equal(np.asarray(shown).ravel(), [1, 2, 2])
    np.testing.assert_array_equal(np.asarray(pool.images).ravel(), [1, 3])
    shown = pool.query(x(4), np.array([0.7], np.float32), np.array([0], np.int32))  # kept: shown, not stored
    np.testing.assert_array_equal(np.asarray(shown).ravel(), [4])
    np.testing.assert_array_equal(np.asarray(pool.images).ravel(), [1, 3])
    assert int(pool.count) == 2
    np.testing.assert_array_equal(ImagePool(0, (1, 1, 1)).query(x(5), np.zeros(1), np.zeros(1, np.int32)), x(5))


def test_constant_then_linear_decay_schedule():
    from gan_tf.models.translation import ConstantThenLinearDecay

    schedule = ConstantThenLinearDecay(2e-4, constant_steps=100, decay_steps=50)
    assert [float(schedule(step)) for step in (0, 100, 125, 150, 400)] == pytest.approx([2e-4, 2e-4, 1e-4, 0.0, 0.0])
    clone = ConstantThenLinearDecay.from_config(schedule.get_config())
    assert float(clone(125)) == pytest.approx(1e-4)


def test_decaying_rate_decays_over_the_runs_last_fraction():
    from gan_tf.models.translation import decaying_rate

    odd = decaying_rate(2e-4, 7, 0.5)  # CycleGAN's halves of an odd run: 3 constant steps, 4 decaying
    assert (odd.constant_steps, odd.decay_steps) == (3, 4)
    assert [float(odd(step)) for step in (3, 5, 7)] == pytest.approx([2e-4, 1e-4, 0.0])
    whole = decaying_rate(1e-3, 10, 1.0)
    assert (whole.constant_steps, whole.decay_steps) == (0, 10)
    assert decaying_rate(2e-4, None, 0.5) == 2e-4 and decaying_rate(2e-4, 400, 0.0) == 2e-4


def test_cyclegan_trains_saves_and_resumes_its_pools_optimizers_and_schedule(tmp_path):
    from gan_tf.models import CycleGAN

    source = open_source("thin2bold_mnist")
    model = CycleGAN.from_data(source.info, width=4, residual_blocks=1, pool_size=6, seed=0)
    model.plan_training(8)
    model.compile_optimizers({})
    assert set(model.optimizer_roles()) == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}
    logs = model.fit(source.dataset(4, seed=0, repeat=True), epochs=1, steps_per_epoch=2, verbose=0).history
    assert all(np.isfinite(values[-1]) for values in logs.values()) and logs["identity"][-1] > 0
    assert int(model.pool_a.count) == 6 and int(model.pool_b.count) == 6
    for optimizer in model.optimizer_roles().values():
        assert int(optimizer.iterations) == 2
    path = str(tmp_path / "cyclegan.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(np.asarray(restored.pool_b.images), np.asarray(model.pool_b.images))
    for role, optimizer in restored.optimizer_roles().items():
        assert int(optimizer.iterations) == 2
        assert float(optimizer.learning_rate) == pytest.approx(float(model.optimizer_roles()[role].learning_rate))
    images = source.info.examples.inputs[:3]
    np.testing.assert_allclose(restored.translate(restored.scaled(images)), model.translate(model.scaled(images)), atol=1e-6)


def test_cyclegan_through_train_and_its_two_serving_directions(tmp_path):
    from gan_tf.training import TrainConfig, train

    result = train(TrainConfig(model="cyclegan", dataset="thin2bold_mnist", epochs=1, steps_per_epoch=2, batch_size=2,
                               model_args={"width": 4, "residual_blocks": 1}, eval_every=0, verbose=0,
                               workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export")))
    # The schedule's horizon is the run: 2 steps, constant for 1, down to 0 at the end.
    assert float(result.model.generator_ab_optimizer.learning_rate) == pytest.approx(0.0)
    signatures = tf.saved_model.load(result.export_path).signatures
    examples = open_source("thin2bold_mnist").info.examples
    for name, images in (("serving_default", examples.inputs[:3]), ("a_to_b", examples.inputs[:3]),
                         ("b_to_a", examples.targets[:2])):
        outputs = signatures[name](images_uint8=tf.constant(images))
        assert outputs["images_uint8"].shape == images.shape
    metadata = json.loads(signatures["metadata"]()["metadata_json"].numpy())
    assert metadata["translation"]["directions"]["b_to_a"]["reverse"] is True
    assert os.path.exists(tmp_path / "run" / "samples" / "epoch_0001.png")
    # The held-out digits are sorted by class (25 each): the preview takes every 25th, one per class.
    _, labels, _ = result.model._held_out(10, spread=True)
    np.testing.assert_array_equal(labels, np.arange(10))
    preview = result.model.preview(2, 6, seed=0)  # 2 rows of 2 groups (A | A->B | A->B->A)
    first_of_groups = preview[[0, 3, 6, 9]]
    np.testing.assert_allclose(first_of_groups, result.model.scaled(examples.inputs[[0, 62, 125, 187]]), atol=1e-6)


def test_learning_rate_flags_set_every_role_of_their_kind_and_keep_cyclegans_schedule(side_by_side):
    from gan_tf.training import TrainConfig, build_model

    info = open_source("thin2bold_mnist").info
    config = TrainConfig(model="cyclegan", d_learning_rate=1e-3, g_learning_rate=5e-4,
                         model_args={"width": 4, "residual_blocks": 1}).resolved()
    model = build_model(config, info, total_steps=100)
    rates = {role: optimizer._learning_rate for role, optimizer in model.optimizer_roles().items()}
    for role, start in (("discriminator_a", 1e-3), ("discriminator_b", 1e-3), ("generator_ab", 5e-4), ("generator_ba", 5e-4)):
        # Constant for the first 50 of the 100 steps from the flag's rate, then down to 0, as by default.
        assert [float(rates[role](step)) for step in (0, 50, 75, 100)] == pytest.approx([start, start, start / 2, 0.0])
        assert model.optimizer_roles()[role].beta_1 == 0.5 and model.optimizer_roles()[role].name == f"{role}_adam"
    pix2pix = build_model(TrainConfig(model="pix2pix", d_learning_rate=1e-3, model_args={"width": 4}).resolved(),
                          open_source(f"pairs:{side_by_side}").info)
    assert float(pix2pix.discriminator_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(pix2pix.generator_optimizer.learning_rate) == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="vae has no discriminator optimizer \\(its roles: model\\)"):
        build_model(TrainConfig(model="vae", d_learning_rate=1e-3).resolved(), gan_data.dataset_info("mnist_5k"))


# ------------------------------------------------------------------------------- srgan


def test_sub_pixel_upsampling_lays_out_channels_as_blocks():
    from gan_tf.models.srgan import SubPixelUpsampling

    x = np.arange(8, dtype=np.float32).reshape(1, 1, 1, 8)  # two output channels of a 2x2 block
    y = np.asarray(SubPixelUpsampling(2)(x))
    assert y.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 2], [4, 6]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[1, 3], [5, 7]])


@pytest.mark.parametrize("scale, side", [(4, 28), (2, 32), (8, 64)])
def test_srresnet_upscales_by_its_scale(scale, side):
    from gan_tf.models import SRGAN

    model = SRGAN(image_shape=(side, side, 3), scale=scale, width=4, residual_blocks=1, seed=0)
    assert model.source_shape == (side // scale, side // scale, 3)
    assert model.generator.output_shape == (None, side, side, 3)
    assert model.discriminator.output_shape == (None, 1)


def test_srgan_refuses_image_pairs_and_sizes_its_scale_does_not_divide():
    from gan_tf.models import SRGAN

    with pytest.raises(ValueError, match="divisible by scale=4"):
        SRGAN(image_shape=(30, 30, 1))
    with pytest.raises(ValueError, match="makes its low-resolution inputs"):
        SRGAN.from_data(DatasetInfo((32, 32, 1), 0, (), source_shape=(32, 32, 1), pairing="paired"))


def test_srgan_pretrains_as_srresnet_then_trains_d():
    from gan_tf.models import SRGAN

    model = SRGAN(image_shape=(16, 16, 1), width=4, residual_blocks=1, pretrain_steps=2, seed=0)
    model.compile_optimizers({})
    images = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32)
    before = [np.array(v) for v in model.discriminator.trainable_variables]
    for step in range(2):
        logs = model.train_on_batch(images, return_dict=True)
        assert logs["pretraining"] == 1.0 and logs["g_loss"] == pytest.approx(logs["mse"], rel=1e-5)
    for variable, old in zip(model.discriminator.trainable_variables, before):
        np.testing.assert_array_equal(np.array(variable), old)  # D is not trained in stage 1
    model.reset_metrics()
    logs = model.train_on_batch(images, return_dict=True)
    assert logs["pretraining"] == 0.0  # stage 2: pixels as features here, so content is the MSE
    assert logs["g_loss"] == pytest.approx(logs["content"] + 1e-3 * logs["adversarial"], rel=1e-4)
    assert any(not np.array_equal(np.array(v), old) for v, old in zip(model.discriminator.trainable_variables, before))


def test_srgan_plans_half_the_run_as_pretraining():
    from gan_tf.models import SRGAN

    model = SRGAN(image_shape=(16, 16, 1), width=4, residual_blocks=1)
    model.plan_training(300)
    assert model.pretrain_steps == 150
    told = SRGAN(image_shape=(16, 16, 1), width=4, residual_blocks=1, pretrain_steps=7)
    told.plan_training(300)
    assert told.pretrain_steps == 7


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """Two classes of 16x16 images: bright squares and dark rings."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for i in range(24):
        image = np.zeros((16, 16, 1), np.uint8)
        offset = rng.integers(0, 4)
        if i % 2:
            image[4 + offset : 10 + offset, 4:10] = 255
        else:
            image[2:14, 2:14] = 120
            image[5:11, 5:11] = 0
        _write_png(str(root / ("squares" if i % 2 else "rings") / f"{i}.png"), image)
    return str(root)


def test_srgan_through_train_with_the_datas_classifier_as_features(tmp_path, labelled_folder, monkeypatch):
    from gan_tf.training import TrainConfig, train

    monkeypatch.setenv("GAN_TF_CACHE", str(tmp_path / "cache"))
    result = train(TrainConfig(model="srgan", dataset=f"folder:{labelled_folder}", epochs=1, steps_per_epoch=2,
                               batch_size=4, model_args={"width": 4, "residual_blocks": 1}, eval_every=0, verbose=0,
                               workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export")))
    model = result.model
    assert model.feature_name == "classifier" and model.pretrain_steps == 1
    assert model.examples.inputs.shape[1:] == (4, 4, 1) and model.examples.aligned
    signatures = tf.saved_model.load(result.export_path).signatures
    outputs = signatures["serving_default"](images_uint8=tf.constant(model.examples.inputs[:3]))
    assert outputs["images_uint8"].shape == (3, 16, 16, 1)  # 4x the input
    restored = keras.saving.load_model(result.checkpoint_path, safe_mode=True)
    probe = model.scaled(model.examples.targets[:2])
    np.testing.assert_allclose(np.asarray(restored.features(probe)), np.asarray(model.features(probe)), atol=1e-6)
