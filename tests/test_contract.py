"""The model contract (`gan_tf.models.generative`): model arguments, and a tiny model that is not a GAN
trained through the same callbacks, evaluation and export as every GAN."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf import MODELS
from gan_tf.training import callbacks
from gan_tf.training import monitoring
from gan_tf.serving import sampling
from gan_tf.data import open_source
from gan_tf.metrics.evaluation import Evaluator
from gan_tf.serving.export import METADATA_FILE, export_model
from gan_tf.models.generative import (GenerativeModel, Samples, check_model_args, constructor_arguments,
                               parse_model_args, parse_value)
from gan_tf.nn.profiling import trained_flops_per_image
from gan_tf.training import TrainConfig


@keras.saving.register_keras_serializable(package="gan_tf_tests")
class MeanImage(GenerativeModel):
    """Not a GAN: one weight (an image), one optimizer, no discriminator, no latent input.

    It learns the mean training image by least squares; samples are that image plus noise.
    """

    value_range = (-1.0, 1.0)

    def __init__(self, image_shape=(8, 8, 1), noise_scale=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.noise_scale = float(noise_scale)
        self.seed = seed
        self.mean_image = self.add_weight(shape=self.image_shape, initializer="zeros", name="mean_image")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def default_optimizers(self):
        return {"model": keras.optimizers.SGD(0.5)}

    def compile_optimizers(self, optimizers, **compile_kwargs):
        self.compile(optimizer=optimizers["model"], **compile_kwargs)

    def optimizer_roles(self):
        return {"model": self.optimizer}

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            losses = tf.reduce_mean(tf.square(images - self.mean_image), axis=[1, 2, 3])
            loss = tf.reduce_mean(losses)
        self.optimizer.apply([tape.gradient(loss, self.mean_image)], [self.mean_image])
        self.loss_tracker.update_state(losses)
        return {"loss": self.loss_tracker.result()}

    def sample(self, num_samples, seed=None, conditions=None):
        if conditions:
            raise ValueError("MeanImage is not conditional")
        noise = keras.random.normal((int(num_samples),) + self.image_shape, seed=seed)
        return Samples(np.clip(np.asarray(self.mean_image + self.noise_scale * noise), -1.0, 1.0), None)

    def export_metadata(self):
        return {"model": "MeanImage", "image_shape": list(self.image_shape), "value_range": [-1.0, 1.0],
                "conditional": False, "num_classes": None, "signatures": ["sample_seeded"]}

    def export_archive(self, metadata):
        archive = keras.export.ExportArchive()
        archive.track(self)

        def sample_seeded(num_samples, seed):
            shape = tf.concat([[num_samples], self.image_shape], axis=0)
            noise = tf.random.stateless_normal(shape, seed=tf.stack([seed, 0]))
            images = tf.clip_by_value(self.mean_image + self.noise_scale * noise, -1.0, 1.0)
            return {"images": images, "images_uint8": tf.cast(tf.round((images + 1.0) * 127.5), tf.uint8)}

        archive.add_endpoint("sample_seeded", sample_seeded, input_signature=[
            tf.TensorSpec([], tf.int32, name="num_samples"), tf.TensorSpec([], tf.int64, name="seed")])
        return archive

    def warmup_requests(self):
        return [("sample_seeded", {"num_samples": np.int32(2), "seed": np.int64(0)})]

    def train_step_flops_per_image(self):
        return 3 * int(np.prod(self.image_shape))

    def get_config(self):
        return {"name": self.name, "image_shape": self.image_shape, "noise_scale": self.noise_scale, "seed": self.seed}


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory):
    """An unlabelled folder of 40 8x8 greyscale images: bright top half, noisy."""
    from PIL import Image

    root = tmp_path_factory.mktemp("flat")
    rng = np.random.default_rng(0)
    for index in range(40):
        image = np.zeros((8, 8), np.uint8)
        image[:4] = 200
        image = np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / f"{index:02d}.png")
    return root


def test_a_model_that_is_not_a_gan_trains_logs_evaluates_checkpoints_and_exports(flat_folder, tmp_path):
    source = open_source(f"folder:{flat_folder}")
    model = MeanImage.from_data(source.info, seed=0)
    assert model.image_shape == (8, 8, 1)
    model.compile_optimizers(model.default_optimizers())
    evaluator = Evaluator(source, num_samples=16, seed=0)  # unlabelled: random CNN features
    assert evaluator.classifier.name == "random_cnn"
    logs = tmp_path / "logs"
    samples = monitoring.TensorBoardSamples(str(logs / "samples"), evaluator, eval_every=1, rows=2, columns=3,
                                            png_directory=str(tmp_path / "png"))
    checkpoints = callbacks.RunCheckpoint(str(tmp_path / "checkpoints"), steps_per_epoch=5)
    history = model.fit(source.dataset(8, value_range=model.value_range, seed=0), epochs=3, verbose=0,
                        callbacks=[samples, checkpoints, keras.callbacks.CSVLogger(str(tmp_path / "h.csv"))])

    losses = history.history["loss"]
    assert losses[-1] < losses[0]  # it learned the mean image
    assert float(np.asarray(model.mean_image)[:4].mean()) > float(np.asarray(model.mean_image)[4:].mean())
    assert sorted(os.listdir(tmp_path / "png")) == ["epoch_0001.png", "epoch_0002.png", "epoch_0003.png"]
    report = samples.latest_metrics
    assert report["classifier"]["features"] == "random_cnn" and np.isfinite(report["generated"]["fid"])
    assert "classifier_score" not in report["generated"]  # no class probabilities from random features
    assert monitoring.quality_tag("fid", report) == "quality/fid_random_cnn"
    assert callbacks.latest_checkpoint(str(tmp_path / "checkpoints"))[0] == callbacks.Position(3, 0)
    assert trained_flops_per_image(model) == 3 * 64

    path = export_model(model, str(tmp_path / "export"))
    serve = tf.saved_model.load(path).signatures["sample_seeded"]
    images = serve(num_samples=tf.constant(5), seed=tf.constant(1, tf.int64))["images_uint8"]
    assert images.shape == (5, 8, 8, 1) and images.dtype == tf.uint8
    assert os.path.getsize(os.path.join(path, "assets.extra", "tf_serving_warmup_requests")) > 0
    assert sampling.describe_model(path) == {"conditional": False, "num_classes": None, "image_shape": [8, 8, 1],
                                             "translation": None, "melody": None, "captions": False,
                                             "embeddings": None}
    assert sampling.read_metadata(path)["model"] == "MeanImage"
    assert os.path.exists(os.path.join(path, METADATA_FILE))


def test_model_args_parse_as_int_float_bool_none_or_text():
    assert parse_model_args(["gp_weight=5", "ema_decay=0.99", "spectral=true", "x=none", "noise=uniform"]) == {
        "gp_weight": 5, "ema_decay": 0.99, "spectral": True, "x": None, "noise": "uniform"}
    assert parse_value("1e-4") == 1e-4 and parse_value("False") is False
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_model_args(["gp_weight"])


def test_constructor_arguments_follow_kwargs_to_the_base_class():
    arguments = constructor_arguments(MODELS["wgan_gp"])
    assert arguments["gp_weight"] == 10.0 and arguments["d_steps"] == 5
    assert "ema_decay" in arguments  # from GAN, through **kwargs
    assert "image_shape" not in arguments and "num_classes" not in arguments  # they come from the data
    assert constructor_arguments(MeanImage) == {"noise_scale": 0.1}


def test_unknown_model_args_are_refused_with_the_valid_names():
    with pytest.raises(ValueError, match="wgan_gp has no argument 'no_such_knob'. Its arguments: .*gp_weight"):
        check_model_args("wgan_gp", MODELS["wgan_gp"], {"no_such_knob": 1})
    with pytest.raises(ValueError, match="dcgan has no argument 'mismatch_weight'"):
        TrainConfig(model="dcgan", model_args={"mismatch_weight": 0}).validate()
    TrainConfig(model="cgan", model_args={"mismatch_weight": 0}).validate()


def test_model_args_reach_the_constructor_through_train(tmp_path):
    from gan_tf.training import train

    config = TrainConfig(model="wgan_gp", epochs=1, steps_per_epoch=1, batch_size=8, latent_dim=8,
                         model_args={"gp_weight": 5, "d_steps": 1, "width": 8}, eval_every=0,
                         workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), verbose=0)
    model = train(config).model
    assert model.gp_weight == 5.0 and model.d_steps == 1 and model.width == 8
    with pytest.raises(ValueError, match="gp_weight.*Received: gp_weight=-1"):
        train(TrainConfig(model="wgan_gp", epochs=1, steps_per_epoch=1, batch_size=8, model_args={"gp_weight": -1},
                          workdir=str(tmp_path / "bad"), export_dir=str(tmp_path / "bad_export"), verbose=0))
