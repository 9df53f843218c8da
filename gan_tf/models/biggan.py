"""BigGAN-style: a class-conditional SN-GAN with conditional batch norm from a shared class
embedding, a hierarchical latent, a projection discriminator, orthogonal regularization, a moving
average of G for sampling, and the truncation trick; one residual block per doubling of the image
(`gan_tf.nn.networks.num_upsamplings`: two at 28x28, three at 32x32, four at 64x64).

Reference:
    Brock, Donahue & Simonyan 2018, "Large Scale GAN Training for High Fidelity Natural Image
    Synthesis", https://arxiv.org/abs/1809.11096
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.gan import ConditionalGAN, check_num_classes
from gan_tf.nn import losses
from gan_tf.nn.layers import ClassProjection, ConditionalBatchNormalization, SpectralNormalization
from gan_tf.nn.networks import channels, check_image_shape, num_upsamplings


def latent_chunks(image_shape):
    """How many chunks z is split in: one for the initial projection, one per residual block."""
    return num_upsamplings(image_shape) + 1


def _sn_conv(filters, kernel_size, name):
    return SpectralNormalization(keras.layers.Conv2D(filters, kernel_size, padding="same"), name=name)


def _residual_block_up(x, condition, filters, name):
    """BigGAN's G block: CBN-ReLU-upsample-conv3x3-CBN-ReLU-conv3x3, plus upsample-conv1x1."""
    h = ConditionalBatchNormalization(name=f"{name}_cbn1")([x, condition])
    h = keras.layers.ReLU()(h)
    h = keras.layers.UpSampling2D(2)(h)
    h = _sn_conv(filters, 3, f"{name}_conv1")(h)
    h = ConditionalBatchNormalization(name=f"{name}_cbn2")([h, condition])
    h = keras.layers.ReLU()(h)
    h = _sn_conv(filters, 3, f"{name}_conv2")(h)
    shortcut = _sn_conv(filters, 1, f"{name}_shortcut")(keras.layers.UpSampling2D(2)(x))
    return keras.layers.Add()([h, shortcut])


def biggan_generator(latent_dim, image_shape, num_classes, width=32, embedding_dim=32):
    """[z, y] -> images, with z split in `latent_chunks(image_shape)` near-equal chunks.

    With n up-sampling blocks (2 at 28x28), chunk 0 feeds SN Dense to a base map
    (`H / 2^n x W / 2^n`, `2^n width` channels, capped at `8 width`); each residual block halves
    the channels (to `width` in the last) and is conditioned, through its conditional batch
    norms, on `[shared_embedding(y), chunk_i]`: one class embedding shared by all blocks, and a
    different part of z per resolution. Then BN -> ReLU -> SN conv3x3 -> tanh (float32).
    """
    height, width_px, image_channels = image_shape
    count = num_upsamplings(image_shape)
    num_chunks = count + 1
    base_h, base_w = height // 2**count, width_px // 2**count
    bounds = [round(i * latent_dim / num_chunks) for i in range(num_chunks + 1)]
    noise = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    shared = keras.layers.Embedding(num_classes, embedding_dim, name="shared_embedding")(labels)
    chunks = [noise[:, start:stop] for start, stop in zip(bounds, bounds[1:])]

    top = channels(width, count)
    x = SpectralNormalization(keras.layers.Dense(base_h * base_w * top), name="sn_dense")(chunks[0])
    x = keras.layers.Reshape((base_h, base_w, top))(x)
    for index in range(count):
        filters = channels(width, count - 1 - index)
        condition = keras.layers.Concatenate(name=f"condition{index}")([shared, chunks[index + 1]])
        x = _residual_block_up(x, condition, filters, name=f"block{index}")
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    x = keras.layers.ReLU()(x)
    output = keras.layers.Conv2D(image_channels, 3, padding="same", activation="tanh", dtype="float32")
    images = SpectralNormalization(output, dtype="float32", name="images")(x)
    return keras.Model([noise, labels], images, name="generator")


def projection_discriminator(image_shape, num_classes, width=32):
    """[x, y] -> score `psi(phi(x)) + <embed(y), phi(x)>`, every layer spectrally normalized.

    phi: SN Conv(2 width, 4, s2) -> LeakyReLU(0.1) -> SN Conv(4 width, 4, s2) -> LeakyReLU(0.1)
    -> ... (one convolution per up-sampling of G, channels capped at `16 width`) -> flatten;
    psi: SN Dense(1); the class term is `gan_tf.nn.layers.ClassProjection`.
    """
    images = keras.Input(image_shape, name="images")
    labels = keras.Input((), dtype="int32", name="labels")
    x = images
    for index in range(num_upsamplings(image_shape)):
        filters = 2 * channels(width, index)
        conv = keras.layers.Conv2D(filters, 4, strides=2, padding="same")
        x = keras.layers.LeakyReLU(0.1)(SpectralNormalization(conv, name=f"sn_conv{index}")(x))
    features = keras.layers.Flatten()(x)
    unconditional = SpectralNormalization(keras.layers.Dense(1, dtype="float32"), dtype="float32", name="psi")(features)
    projection = ClassProjection(num_classes, spectral_norm=True, dtype="float32", name="projection")([features, labels])
    return keras.Model([images, labels], keras.layers.Add(dtype="float32", name="score")([unconditional, projection]), name="discriminator")


@keras.saving.register_keras_serializable(package="gan_tf")
class BigGAN(ConditionalGAN):
    """A BigGAN-style class-conditional GAN for small images.

    From BigGAN, at the scale of our datasets: class-conditional batch norm in G whose gains and
    biases come from a class embedding shared by all blocks; a hierarchical latent (z split
    into one chunk per resolution); spectral norm in G and D; a projection discriminator;
    the hinge loss; orthogonal regularization of G's weights (`ortho_weight`, 1e-4); two D
    steps per G step; and an exponential moving average of G's weights (`ema_decay`, with a
    short warm-up; the base class's mechanism, on here) that `generate`, `call` and the
    export sample from: `sampling_generator` is the average. `generate(..., truncation=t)` (and the exported `sample` signatures'
    `truncation` input) draws z from N(0, 1) truncated to [-t, t]: the truncation trick,
    trading variety for fidelity. Not from BigGAN: the residual blocks and D are two levels
    deep, D is a strided-conv network, and G learns as fast as D (Adam(4e-4) for both, betas
    (0, 0.999); BigGAN and SAGAN give G a quarter of D's rate), chosen by measurement
    (`default_optimizers`).

    Trackers: `d_loss`, `g_loss` (hinge part, without the regularizer), `real_score`,
    `fake_score`, `ortho_penalty` (unweighted).

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        num_classes: number of classes.
        latent_dim: size of z, split in near-equal chunks, one per resolution (3 at 28x28).
        width: channel unit: G's maps have 4w, 2w, w channels, D's 2w and 4w.
        embedding_dim: size of the shared class embedding.
        ortho_weight: weight of the orthogonal regularization (0 turns it off).
        ema_decay: decay of the average of G's weights that samples come from (`GAN`'s
            `ema_decay`; here on by default).
        d_steps, noise, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = BigGAN(image_shape=(28, 28, 1), num_classes=10, seed=0)
        >>> gan.compile()
        >>> gan.fit(load_dataset("fashion_mnist", 64), epochs=20)
        >>> shirts = gan.generate(labels=[6] * 8, seed=0, truncation=1.0)

    Reference:
        Brock, Donahue & Simonyan 2018, "Large Scale GAN Training for High Fidelity Natural
        Image Synthesis", https://arxiv.org/abs/1809.11096; Miyato & Koyama 2018, "cGANs with
        Projection Discriminator", https://arxiv.org/abs/1802.05637
    """

    exports_truncation = True

    fixed_arguments = ("real_label",)  # no targets: the hinge loss

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        latent_dim=120,
        width=32,
        embedding_dim=32,
        ortho_weight=1e-4,
        ema_decay=0.999,
        d_steps=2,
        noise="gaussian",
        seed=None,
        **kwargs,
    ):
        self.image_shape = check_image_shape(image_shape)
        if latent_dim < latent_chunks(self.image_shape):
            raise ValueError(
                f"`latent_dim` must be at least {latent_chunks(self.image_shape)} (one chunk per "
                f"resolution at {self.image_shape}). Received: latent_dim={latent_dim}"
            )
        if int(width) != width or width < 1 or embedding_dim < 1:
            raise ValueError(f"`width` and `embedding_dim` must be positive. Received: {width}, {embedding_dim}")
        if ortho_weight < 0:
            raise ValueError(f"`ortho_weight` must be at least 0. Received: ortho_weight={ortho_weight}")
        if noise != "gaussian":
            raise ValueError(f"BigGAN draws Gaussian noise (the truncation trick needs it). Received: noise={noise!r}")
        self.width = int(width)
        self.embedding_dim = int(embedding_dim)
        self.ortho_weight = float(ortho_weight)
        num_classes = check_num_classes(num_classes)
        generator = biggan_generator(int(latent_dim), self.image_shape, num_classes, self.width, self.embedding_dim)
        super().__init__(
            generator=generator,
            discriminator=projection_discriminator(self.image_shape, num_classes, self.width),
            num_classes=num_classes,
            latent_dim=latent_dim,
            noise=noise,
            real_label=1.0,  # unused: the hinge loss has no targets
            d_steps=d_steps,
            seed=seed,
            ema_decay=ema_decay,
            **kwargs,
        )
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        self.ortho_penalty_tracker = keras.metrics.Mean(name="ortho_penalty")

    def default_optimizers(self):
        """Adam(4e-4, beta_1=0, beta_2=0.999) for both networks. The two time-scale rates of
        SAGAN (G at 1e-4, a quarter of D's) left G far behind at short budgets: on mnist_5k,
        5 epochs (`bench/quality.py --epochs=5`, docs/results/gans.md, "BigGAN and SAGAN: G as
        fast as D"), FID 355.6 and label accuracy 0.173 with them, 19.3 and 0.984 with G at 4e-4."""
        return {
            "discriminator": keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.999, name="d_adam"),
            "generator": keras.optimizers.Adam(4e-4, beta_1=0.0, beta_2=0.999, name="g_adam"),
        }

    @property
    def metrics(self):
        return [
            self.d_loss_tracker,
            self.g_loss_tracker,
            self.real_score_tracker,
            self.fake_score_tracker,
            self.ortho_penalty_tracker,
        ] + self.ada_trackers()

    def regularized_kernels(self):
        """G's weight matrices and kernels that orthogonal regularization applies to: every
        trainable weight of rank 2 or more but the shared class embedding (as in BigGAN)."""
        return [
            variable
            for variable in self.generator.trainable_variables
            if len(variable.shape) >= 2 and "shared_embedding" not in variable.path
        ]

    def train_step(self, data):
        real_images, labels = self.unpack_labeled_batch(data)
        batch_size = ops.shape(real_images)[0]

        for _ in range(self.d_steps):
            fake_images = self.generator([self.sample_noise(batch_size), labels], training=True)
            real_seen, fake_seen = self.augment_images(real_images), self.augment_images(fake_images)
            with tf.GradientTape() as tape:
                real_scores = self.discriminator([real_seen, labels], training=True)
                fake_scores = self.discriminator([fake_seen, labels], training=True)
                d_losses = losses.hinge_discriminator_loss(real_scores, fake_scores)
                d_losses += self.lazy_r1_penalty(lambda x: self.discriminator([x, labels], training=True), real_seen)
                d_losses += self.consistency_penalty(lambda x: self.discriminator([x, labels], training=True),
                                                     real_seen, real_scores, fake_seen, fake_scores)
                d_loss = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_losses))
            d_variables = self.discriminator.trainable_variables
            self.d_optimizer.apply(tape.gradient(d_loss, d_variables), d_variables)
            self.track_real_logits(real_scores)

        noise = self.sample_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_images = self.augment_images(self.generator([noise, labels], training=True))
            scores = self.discriminator([fake_images, labels], training=True)
            g_losses = losses.wasserstein_generator_loss(scores)
            ortho_penalty = losses.orthogonal_regularization(self.regularized_kernels())
            # The penalty is per model, not per example: divided by the replica count so that
            # summing the replicas' gradients adds it once.
            g_loss = self.average_generator_loss(g_losses) + self.ortho_weight * ortho_penalty / (
                tf.distribute.get_strategy().num_replicas_in_sync
            )
            g_loss = self.g_optimizer.scale_loss(g_loss)
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_variables), g_variables)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.real_score_tracker.update_state(real_scores)
        self.fake_score_tracker.update_state(fake_scores)
        self.ortho_penalty_tracker.update_state(ortho_penalty)
        return self.train_step_logs()

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"], config["real_label"]
        return {
            **config,
            "image_shape": self.image_shape,
            "width": self.width,
            "embedding_dim": self.embedding_dim,
            "ortho_weight": self.ortho_weight,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
