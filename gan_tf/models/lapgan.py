"""LAPGAN: a Laplacian pyramid of GANs, each level drawing the detail the coarser one lacks.

Reference:
    Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a Laplacian
    Pyramid of Adversarial Networks", https://arxiv.org/abs/1506.05751 (section 3 and the
    CIFAR-10 networks of section 4; reference code: facebook/eyescream).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_tf.grids import grouped_cells
from gan_tf.models.gan import GAN, ConditionalGAN, check_num_classes, mismatched_labels
from gan_tf.nn import losses, pyramid
from gan_tf.nn.layers import ConcatConditionPlanes
from gan_tf.nn.networks import check_dropout, check_width


def _labels_input(num_classes):
    labels = keras.Input((), dtype="int32", name="labels")
    return labels, keras.layers.CategoryEncoding(num_classes, output_mode="one_hot", name="one_hot")(labels)


def coarse_generator(latent_dim, shape, num_classes=None, width=64):
    """Level 0's G, `z [, labels] -> I_0` in [-1, 1]: Dense to an `H_0 x W_0 x 2 width` map, then
    3x3 convolutions of `2 width` and `width` channels (batch norm, LeakyReLU 0.2) and a tanh
    output. The paper's G0 is fully connected; here that one collapsed to a single image on
    mnist_5k within 400 steps, where DCGAN's convolutional layers do not."""
    noise = keras.Input((latent_dim,), name="z")
    inputs, x = [noise], noise
    if num_classes:
        labels, one_hot = _labels_input(num_classes)
        inputs, x = [noise, labels], keras.layers.Concatenate()([noise, one_hot])
    x = keras.layers.Dense(shape[0] * shape[1] * 2 * width, use_bias=False)(x)
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Reshape((shape[0], shape[1], 2 * width))(x)
    for filters in (2 * width, width):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    images = keras.layers.Conv2D(shape[-1], 3, padding="same", activation="tanh")(x)
    return keras.Model(inputs, images, name="coarse_generator")


def coarse_discriminator(shape, num_classes=None, dropout=0.0, width=64):
    """Level 0's D, `I_0 [, labels] -> logit`: 3x3 convolutions of `width` (stride 1) and `2 width`
    (stride 2) channels with LeakyReLU and dropout, the class as one-hot planes, one logit."""
    images = keras.Input(shape, name="images")
    inputs, x = [images], images
    if num_classes:
        labels, one_hot = _labels_input(num_classes)
        inputs, x = [images, labels], ConcatConditionPlanes()([images, one_hot])
    for filters, strides in ((width, 1), (2 * width, 2)):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(x)), name="coarse_discriminator")


def residual_generator(level, shape, num_classes=None, channels=64):
    """Level k's G, `[upsampled I_{k-1}, noise plane [, labels]] -> h_k`: three convolutions, as the
    paper's, on the coarse image with a noise plane (and the class as one-hot planes) stacked on as
    channels; batch norm and ReLU between, a linear output (residuals are signed). 3x3 kernels and
    `channels` halving as the side doubles (as DCGAN's do): with the paper's 5x5 kernels and 128
    channels a train step at 28x28 cost 6 times DCGAN's (3.5 against 0.58 GFLOPs per image)."""
    upsampled = keras.Input(shape, name="upsampled")
    noise = keras.Input(shape[:2] + (1,), name="noise")
    inputs, x = [upsampled, noise], keras.layers.Concatenate()([upsampled, noise])
    if num_classes:
        labels, one_hot = _labels_input(num_classes)
        inputs, x = inputs + [labels], ConcatConditionPlanes()([x, one_hot])
    for _ in range(2):
        x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.ReLU()(x)
    residual = keras.layers.Conv2D(shape[-1], 3, padding="same")(x)
    return keras.Model(inputs, residual, name=f"residual_generator_{level}")


def residual_discriminator(level, shape, num_classes=None, dropout=0.0, width=64):
    """Level k's D, `[upsampled I_{k-1}, h_k [, labels]] -> logit`: it judges the residual next to
    the coarse image it refines (the paper's conditional D); two stride-2 5x5 convolutions with
    LeakyReLU and dropout, then one logit."""
    upsampled = keras.Input(shape, name="upsampled")
    residual = keras.Input(shape, name="residual")
    inputs, x = [upsampled, residual], keras.layers.Concatenate()([upsampled, residual])
    if num_classes:
        labels, one_hot = _labels_input(num_classes)
        inputs, x = inputs + [labels], ConcatConditionPlanes()([x, one_hot])
    for multiplier in (1, 2):
        x = keras.layers.Conv2D(multiplier * width, 5, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(x)), name=f"residual_discriminator_{level}")


def split_noise(noise, latent_dim, shapes):
    """`[z_0, noise plane_1, ...]` from one noise row per image: the coarse level's `latent_dim`
    values, then an `H_k x W_k x 1` plane for each finer level, in that order."""
    parts, start = [noise[:, :latent_dim]], latent_dim
    for height, width, _ in shapes[1:]:
        parts.append(ops.reshape(noise[:, start:start + height * width], (-1, height, width, 1)))
        start += height * width
    return parts


def pyramid_sampler(level_generators, latent_dim, shapes, num_classes=None):
    """`z [, labels] -> [I_0, ..., I_{K-1}]`: the pyramid composed as at sampling time, each level's
    residual added to the upsampled coarser image and clipped to [-1, 1] (where the real pyramid's
    images lie, as averages of images in [-1, 1])."""
    noise = keras.Input((latent_dim + sum(h * w for h, w, _ in shapes[1:]),), name="z")
    labels = keras.Input((), dtype="int32", name="labels") if num_classes else None
    extra = [labels] if num_classes else []
    codes = split_noise(noise, latent_dim, shapes)
    images = [level_generators[0]([codes[0]] + extra)]
    for generator, plane in zip(level_generators[1:], codes[1:]):
        upsampled = pyramid.upsample(images[-1])
        images.append(ops.clip(upsampled + generator([upsampled, plane] + extra), -1.0, 1.0))
    return keras.Model([noise] + extra, images, name="pyramid_sampler")


def pyramid_discriminator(level_discriminators, shapes, num_classes=None):
    """`[I_0, upsampled_1, h_1, ..., upsampled_{K-1}, h_{K-1} [, labels]] -> [logit_0, ...]`: every
    level's D in one model (one optimizer trains them all; their losses do not interact)."""
    inputs = [keras.Input(shapes[0], name="coarse_images")]
    for k, shape in enumerate(shapes[1:], start=1):
        inputs += [keras.Input(shape, name=f"upsampled_{k}"), keras.Input(shape, name=f"residuals_{k}")]
    extra = [keras.Input((), dtype="int32", name="labels")] if num_classes else []
    logits = [level_discriminators[0]([inputs[0]] + extra)]
    for k, discriminator in enumerate(level_discriminators[1:], start=1):
        logits.append(discriminator([inputs[2 * k - 1], inputs[2 * k]] + extra))
    return keras.Model(inputs + extra, logits, name="discriminator")


@keras.saving.register_keras_serializable(package="gan_tf")
class LAPGAN(GAN):
    """A Laplacian pyramid of GANs: level 0 draws a coarse image, each finer level k draws the
    band-pass residual that, added to the upsampled coarser image, makes the next image.

    `train_step` per batch of real images: builds the batch's Laplacian pyramid (`gan_tf.nn.pyramid`:
    coarsest `I_0`, residuals `h_k = I_k - u(I_{k-1})`); `d_steps` D updates, where level 0's D
    judges real `I_0` against `G_0(z)` and level k's D judges `(u(I_{k-1}), h_k)` against `(u(I_{k-1}),
    G_k(u(I_{k-1}), noise))` on the *real* coarser image, as the paper trains its levels; then one G
    update with the non-saturating loss on every level (a conditional model's Ds also learn to
    call real images with a wrong label fake, `mismatch_weight`); then the trackers `d_loss` and `g_loss`
    (sums over the levels), `d_real` and `d_fake` (D's mean probabilities over the levels) and each
    level's `d_loss_<k>` and `g_loss_<k>`. Since no level's loss depends on another level's
    networks, one optimizer per role over all levels is the paper's independent training, done in
    one `fit`. Real targets are `real_label` (one-sided smoothing), as in every GAN here.

    Sampling composes the levels: `I_0 = G_0(z_0)`, `I_k = clip(u(I_{k-1}) + G_k(u(I_{k-1}),
    noise_k))`. The model's noise vector (`latent_dim` of the serving signatures) is all of it:
    the `latent_dim` values of z_0, then one `H_k x W_k` noise plane per finer level, so a seed fixes
    a whole sample. `preview` shows each sample's levels side by side, coarse to fine.

    Args:
        image_shape: `(H, W, C)`; the sides must halve `levels - 1` times.
        levels: pyramid levels K; None: halve until the coarsest side is at most 16 (2 levels at
            28x28: 14 -> 28; at 32x32: 16 -> 32; 3 at 64x64; `gan_tf.nn.pyramid.COARSEST_SIDE`
            says which measurement chose it: a 7x7 start gave FID 205.8 against 79.3).
        latent_dim: size of level 0's z.
        width: channel unit (level 0: `2 width` and `width` channels in G, `width` and `2 width` in
            D; finer levels: G's channels halve as the side doubles, `width` at the level below the
            image and `width / 2` at the image; D's are `width` then `2 width`).
        dropout: dropout rate in every D (default none, as DCGAN's since measured there; the
            paper uses dropout in its Ds).
        conditional: class-conditional LAPGAN (the paper's CC-LAPGAN): every level's G and D also
            get the one-hot class; trains on `(images, labels)` and samples by label.
        num_classes: classes of a conditional model (from the data).
        mismatch_weight: conditional only: weight of each level D's term calling a real image
            with a wrong label fake (Reed et al.'s matching-aware D, as `CGAN` has; 0: the
            paper's game). Without it the coarse level here learnt to ignore the class (on
            tests/test_lapgan.py's striped classes, one band drawn for all four).
        ema_decay: sample, preview and export from a moving average of G's weights (every
            level's), as every image GAN here does (see `GAN`); None: from the trained G. After
            10 epochs on mnist_5k it made no difference (FID 80.7 against 79.3 without).
        noise, real_label, d_steps, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = LAPGAN(image_shape=(28, 28, 1), seed=0)  # levels 14 -> 28
        >>> gan.compile()
        >>> gan.fit(load_dataset("mnist_5k", LAPGAN.default_batch_size), epochs=20)
        >>> images = gan.generate(16, seed=1)  # [16, 28, 28, 1] in [-1, 1]
    """

    default_batch_size = 32
    older_config_defaults = {"ema_decay": None}  # saved before LAPGAN kept an average of G's weights
    fixed_arguments = ("augment", "augment_padding", "ada_target", "ada_interval", "ada_images", "r1_weight", "r1_interval",
                       "consistency_weight", "consistency_augment")
    # Each level's D sees a residual beside its coarser image: augmenting the pair with one
    # transform is not written yet.
    applies_augment = False
    applies_r1 = False
    augment_refusal = "residuals beside their coarser images"

    def __init__(self, image_shape=(28, 28, 1), levels=None, latent_dim=100, width=64, dropout=0.0, conditional=False,
                 num_classes=10, mismatch_weight=1.0, noise="gaussian", real_label=0.9, d_steps=1, ema_decay=0.999, seed=None,
                 **kwargs):
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"`image_shape` must be (height, width, channels). Received: image_shape={image_shape}")
        self.levels = pyramid.check_levels(self.image_shape, pyramid.default_levels(self.image_shape) if levels is None else levels)
        self.width = check_width(width)
        self.dropout = check_dropout(dropout)
        if int(latent_dim) < 1:
            raise ValueError(f"`latent_dim` must be at least 1. Received: latent_dim={latent_dim}")
        self.coarse_latent_dim = int(latent_dim)
        self.conditional = bool(conditional)
        self.needs_labels = self.conditional
        self.num_classes = check_num_classes(num_classes)
        if not mismatch_weight >= 0.0:
            raise ValueError(f"`mismatch_weight` must be >= 0. Received: mismatch_weight={mismatch_weight}")
        self.mismatch_weight = float(mismatch_weight)
        classes = self.num_classes if self.conditional else None
        self.level_shapes = pyramid.level_shapes(self.image_shape, self.levels)
        generators = [coarse_generator(self.coarse_latent_dim, self.level_shapes[0], classes, self.width)]
        discriminators = [coarse_discriminator(self.level_shapes[0], classes, self.dropout, self.width)]
        for k, shape in enumerate(self.level_shapes[1:], start=1):
            channels = max(1, self.width * 2 ** (self.levels - 1 - k) // 2)  # 28x28: 64 at 14, 32 at 28
            generators.append(residual_generator(k, shape, classes, channels))
            discriminators.append(residual_discriminator(k, shape, classes, self.dropout, self.width))
        sampler = pyramid_sampler(generators, self.coarse_latent_dim, self.level_shapes, classes)
        self.levels_sampler = sampler
        super().__init__(
            generator=keras.Model(sampler.inputs, sampler.outputs[-1], name="generator"),
            discriminator=pyramid_discriminator(discriminators, self.level_shapes, classes),
            latent_dim=sampler.inputs[0].shape[-1],
            noise=noise,
            real_label=real_label,
            d_steps=d_steps,
            seed=seed,
            ema_decay=ema_decay,
            **kwargs,
        )
        self.level_d_loss_trackers = [keras.metrics.Mean(name=f"d_loss_{k}") for k in range(self.levels)]
        self.level_g_loss_trackers = [keras.metrics.Mean(name=f"g_loss_{k}") for k in range(self.levels)]

    def default_optimizers(self):
        """Adam(8e-4, beta_1=0.5) for both roles, with batches of 32 and no dropout: DCGAN's
        defaults (chosen by measurement there), which with the 14 -> 28 pyramid gave FID 79.3 after
        10 epochs on mnist_5k (80.7 sampled from the average) against 503.4 for the defaults of
        before (7 -> 14 -> 28, batch 64, dropout 0.3, Adam(2e-4), no average; bench/lapgan_levels.py)."""
        return {
            "discriminator": keras.optimizers.Adam(8e-4, beta_1=0.5, name="d_adam"),
            "generator": keras.optimizers.Adam(8e-4, beta_1=0.5, name="g_adam"),
        }

    @classmethod
    def from_data(cls, info, **model_args):
        """As `GAN.from_data`; a conditional LAPGAN needs labelled data with at least 2 classes."""
        if model_args.get("conditional") and info.num_classes < 2:
            raise ValueError(
                "LAPGAN with conditional=true needs labelled data with at least 2 classes; this dataset has "
                + (f"{info.num_classes} class" if info.num_classes else "no labels") + "."
            )
        return super().from_data(info, **model_args)

    @property
    def level_generators(self):
        """`[G_0, ..., G_{K-1}]`, the trained networks inside the sampler (not tracked twice)."""
        return self._levels_inside(self.generator)

    @property
    def sampling_level_generators(self):
        """`[G_0, ..., G_{K-1}]` of the network that samples: the average's levels when G's weights
        are averaged (`ema_decay`), else `level_generators`."""
        return self._levels_inside(self.sampling_generator)

    def _levels_inside(self, generator):
        return [generator.get_layer("coarse_generator")] + [
            generator.get_layer(f"residual_generator_{k}") for k in range(1, self.levels)]

    # ------------------------------------------------------------------------------ train

    @property
    def metrics(self):
        return super().metrics + self.level_d_loss_trackers + self.level_g_loss_trackers

    def unpack_batch(self, data):
        """`(images, int32 labels or None)`; labels only for a conditional model (which needs them)."""
        if not self.conditional:
            return self.unpack_images(data), None
        return ConditionalGAN.unpack_labeled_batch(self, data)

    def generate_levels(self, noise, upsampled, labels, training):
        """`[G_0(z_0), G_1(upsampled_1, plane_1), ...]`: each level's output given the real
        pyramid's upsampled coarser images (as in training)."""
        extra = [] if labels is None else [labels]
        codes = split_noise(noise, self.coarse_latent_dim, self.level_shapes)
        generators = self.level_generators
        outputs = [generators[0]([codes[0]] + extra, training=training)]
        for generator, image, plane in zip(generators[1:], upsampled, codes[1:]):
            outputs.append(generator([image, plane] + extra, training=training))
        return outputs

    def judge_levels(self, level_images, upsampled, labels):
        """Every level's D logits on `[I_0, h_1, ..., h_{K-1}]` next to `upsampled`."""
        inputs = [level_images[0]]
        for image, residual in zip(upsampled, level_images[1:]):
            inputs += [image, residual]
        return self.discriminator(inputs + ([] if labels is None else [labels]), training=True)

    def train_step(self, data):
        real_images, labels = self.unpack_batch(data)
        batch_size = ops.shape(real_images)[0]
        images = pyramid.gaussian_pyramid(real_images, self.levels)
        upsampled = [pyramid.upsample(image) for image in images[:-1]]
        real_levels = [images[0]] + [image - coarse for image, coarse in zip(images[1:], upsampled)]

        for _ in range(self.d_steps):
            fake_levels = self.generate_levels(self.sample_noise(batch_size), upsampled, labels, training=True)
            with tf.GradientTape() as tape:
                real_logits = tf.nest.flatten(self.judge_levels(real_levels, upsampled, labels))
                fake_logits = tf.nest.flatten(self.judge_levels(fake_levels, upsampled, labels))
                level_d_losses = [losses.minimax_discriminator_loss(real, fake, self.real_label)
                                  for real, fake in zip(real_logits, fake_logits)]
                if labels is not None and self.mismatch_weight:
                    wrong_labels = mismatched_labels(labels, self.num_classes, self.seed_generator)
                    mismatched_logits = tf.nest.flatten(self.judge_levels(real_levels, upsampled, wrong_labels))
                    level_d_losses = [loss + self.mismatch_weight * losses.mismatched_label_discriminator_loss(logits)
                                      for loss, logits in zip(level_d_losses, mismatched_logits)]
                d_losses = ops.sum(ops.stack(level_d_losses), axis=0)
                d_loss = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_losses))
            d_variables = self.discriminator.trainable_variables
            self.d_optimizer.apply(tape.gradient(d_loss, d_variables), d_variables)

        noise = self.sample_noise(batch_size)
        with tf.GradientTape() as tape:
            logits = tf.nest.flatten(self.judge_levels(self.generate_levels(noise, upsampled, labels, training=True),
                                                       upsampled, labels))
            level_g_losses = [losses.minimax_generator_loss(level_logits) for level_logits in logits]
            g_losses = ops.sum(ops.stack(level_g_losses), axis=0)
            g_loss = self.g_optimizer.scale_loss(self.average_generator_loss(g_losses))
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_variables), g_variables)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.real_probability_tracker.update_state(ops.mean(ops.sigmoid(ops.stack(real_logits)), axis=0))
        self.fake_probability_tracker.update_state(ops.mean(ops.sigmoid(ops.stack(fake_logits)), axis=0))
        for tracker, values in zip(self.level_d_loss_trackers, level_d_losses):
            tracker.update_state(values)
        for tracker, values in zip(self.level_g_loss_trackers, level_g_losses):
            tracker.update_state(values)
        return self.train_step_logs()

    # -------------------------------------------------------------------------- inference

    def call(self, inputs, training=False):
        """Generates images from `z` (or `[z, labels]` when conditional), with the sampling
        generator (the average of G's weights, by default)."""
        return self.sampling_generator(inputs, training=training)

    def generate(self, num_samples=None, labels=None, seed=None, batch_size=256, truncation=None):
        """Images in [-1, 1] as numpy: `GAN.generate`, or `ConditionalGAN.generate` (by `labels`;
        classes 0, 1, 2, ... in turn when None) for a conditional model."""
        if self.conditional:
            return ConditionalGAN.generate(self, num_samples, labels, seed, batch_size, truncation)
        if labels is not None:
            raise ValueError("This LAPGAN is not conditional; it takes no labels.")
        return GAN.generate(self, num_samples, seed, batch_size, truncation)

    def sample(self, num_samples, seed=None, conditions=None, truncation=None):
        """The contract's `sample`: by `conditions["labels"]` when conditional (see `ConditionalGAN`)."""
        if self.conditional:
            return ConditionalGAN.sample(self, num_samples, seed, conditions, truncation)
        return GAN.sample(self, num_samples, seed, conditions, truncation)

    def sample_levels(self, num_samples, seed=None, labels=None):
        """`[I_0, ..., I_{K-1}]` of the same `num_samples` samples (numpy, coarsest first), drawn
        by the sampling generator's levels (so its last level is `generate`'s image)."""
        sampler = self.levels_sampler
        if self.sampling_generator is not self.generator:  # the average's levels, composed alike
            sampler = pyramid_sampler(self.sampling_level_generators, self.coarse_latent_dim,
                                      self.level_shapes, self.num_classes if self.conditional else None)
        noise = self.draw_noise(int(num_samples), seed)
        inputs = noise
        if self.conditional:
            labels = np.arange(int(num_samples)) % self.num_classes if labels is None else labels
            inputs = [noise, ops.convert_to_tensor(np.asarray(labels, np.int32).reshape(-1))]
        return [ops.convert_to_numpy(level) for level in tf.nest.flatten(sampler(inputs, training=False))]

    def preview(self, rows, columns, seed):
        """Each row holds `columns // levels` samples, each as its levels side by side (coarse to
        fine, coarse ones enlarged by pixel repetition), the rest of the row blank; a conditional
        model draws class k in row k."""
        per_row = max(1, columns // self.levels)
        labels = np.repeat(np.arange(rows) % self.num_classes, per_row) if self.conditional else None
        levels = self.sample_levels(rows * per_row, seed=seed, labels=labels)
        height, width = self.image_shape[:2]
        enlarged = [np.repeat(np.repeat(level, height // level.shape[1], axis=1), width // level.shape[2], axis=2)
                    for level in levels]
        return grouped_cells(enlarged, rows, columns, np.full(self.image_shape, self.value_range[0], np.float32))

    def export_metadata(self):
        """`GAN`'s metadata plus the pyramid: its level shapes and how `z` splits into them."""
        return {**super().export_metadata(), "pyramid_levels": [list(shape) for shape in self.level_shapes],
                "coarse_latent_dim": self.coarse_latent_dim}

    # ------------------------------------------------------------------------------ config

    def get_config(self):
        config = super().get_config()
        for key in ("generator", "discriminator"):
            del config[key]
        return {**config, "image_shape": self.image_shape, "levels": self.levels, "latent_dim": self.coarse_latent_dim,
                "width": self.width, "dropout": self.dropout, "conditional": self.conditional,
                "num_classes": self.num_classes, "mismatch_weight": self.mismatch_weight}

    @classmethod
    def from_config(cls, config):
        return cls(**{**cls.older_config_defaults, **config})
