"""Pix2Pix: a conditional GAN that learns a mapping from input images to output images from pairs.

Reference:
    Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial
    Networks", https://arxiv.org/abs/1611.07004 (section 3 and appendix 6.1.1-6.1.2; the
    reference code is junyanz/pytorch-CycleGAN-and-pix2pix, `UnetGenerator`, `NLayerDiscriminator`).
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.translation import Direction, TranslationModel, decaying_rate
from gan_tf.nn import losses
from gan_tf.nn.profiling import forward_flops_per_example
from gan_tf.nn.translation_networks import patch_discriminator, unet_depth, unet_generator

@keras.saving.register_keras_serializable(package="gan_tf")
class Pix2Pix(TranslationModel):
    """Pix2Pix: a U-Net G maps an input image to an output; a PatchGAN D judges (input, image) pairs.

    `train_step` per batch of pairs `(x, y)`: draws each example's dropout seeds (G's only noise),
    translates `G(x)`; one D update on `0.5 * [BCE(D(x, y), real_label) + BCE(D(x, G(x)), 0)]`
    (halved, as the paper slows D); one G update on `gan_weight * BCE(D(x, G(x)), 1) + l1_weight *
    |G(x) - y|_1`; then the trackers `d_loss`, `g_loss`, `g_gan` (G's adversarial term), `l1`,
    `d_real`, `d_fake` (D's mean probabilities per patch). Dropout stays on when translating (the
    paper's test-time noise), keyed by a seed per example; batch norm uses its moving averages
    then (the paper used the test batch's statistics; with batches of many examples the moving
    averages are the steadier choice).

    With `gan_weight=0` it is the paper's "L1 only" ablation: a U-Net trained on L1 alone
    (D is not trained), blurry where the mapping is uncertain.

    Measured on `edges2fashion` (32x32, width 32; README "The image-to-image table",
    `bench/pix2pix_balance.py`): D pulls ahead once L1 has converged, and from about 25,000 steps
    on the FID to the real items drifts up (more with batch norm's moving averages than with the
    batch's own statistics). A D four times slower (`train.py --d_learning_rate=5e-5`, or
    `compile_optimizers({"discriminator": keras.optimizers.Adam(5e-5, beta_1=0.5)})`) cuts that
    drift to a third; with slower moving averages too (`batch_norm_momentum=0.99`) the FID at 8
    and 15 minutes fell to 31.6 and 28.2 (L1-only: 43.4, 44.4), yet still rose to 40.2 by 30
    minutes. Decaying both rates over the run's second half as well (`decay_fraction=0.5`, the
    reference code's schedule) removed the rise: FID 25.2-28.7 over the last 5 of 10 epochs, 27.5
    at the end, below the L1-only net's 36.8-41.5 after 30 minutes. The defaults stay the paper's.

    Args:
        source_shape: `(H, W, C)` of the inputs; H and W divisible by 4 (best: by 32).
        image_shape: `(H, W, C')` of the outputs (the same H and W).
        width: channels of the first level (64 in the paper); each level doubles, to 8x.
        l1_weight: lambda of the L1 term (100 in the paper).
        gan_weight: weight of G's adversarial term (1; 0: L1 only).
        real_label: D's target for real pairs (0.9: one-sided label smoothing).
        dropout: rate of the decoder's first three blocks (0.5 in the paper).
        patch_layers: stride-2 levels of D (3: 70x70 patches at 256 px).
        batch_norm_momentum: of G's batch norm moving averages, which translate and export
            (0.9: the reference code's PyTorch `momentum=0.1`).
        decay_fraction: share of the planned run (`plan_training`; `train.py` plans `--epochs` x
            `--steps_per_epoch`) over which both learning rates fall linearly to 0 (0: constant, the
            paper's; 0.5: the reference code's `--n_epochs 100 --n_epochs_decay 100`).
        seed: seed of the dropout stream.

    Example:
        >>> source = open_source("edges2fashion")
        >>> model = Pix2Pix.from_data(source.info, width=32, seed=0)
        >>> model.compile_optimizers({})  # Adam(2e-4, beta_1=0.5) for D and G
        >>> model.fit(source.dataset(16, seed=0, repeat=True), epochs=5, steps_per_epoch=500)
        >>> outputs = model.sample(8, seed=0, conditions={"images": edge_maps}).images
    """

    pairing = "paired"

    def __init__(self, source_shape=(32, 32, 1), image_shape=(32, 32, 1), width=64, l1_weight=100.0, gan_weight=1.0,
                 real_label=0.9, dropout=0.5, patch_layers=3, batch_norm_momentum=0.9, decay_fraction=0.0, seed=None, **kwargs):
        super().__init__(source_shape=source_shape, image_shape=image_shape, seed=seed, **kwargs)
        if tuple(source_shape[:2]) != tuple(image_shape[:2]):
            raise ValueError(f"Pix2Pix maps images to images of the same size. Received: {source_shape} -> {image_shape}")
        if width < 1:
            raise ValueError(f"`width` must be at least 1. Received: width={width}")
        for name, value in (("l1_weight", l1_weight), ("gan_weight", gan_weight)):
            if value < 0:
                raise ValueError(f"`{name}` must be at least 0. Received: {name}={value}")
        if l1_weight == 0 and gan_weight == 0:
            raise ValueError("Pix2Pix needs a loss: `l1_weight` or `gan_weight` must be positive.")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"`real_label` must be in (0, 1]. Received: real_label={real_label}")
        if patch_layers < 1:
            raise ValueError(f"`patch_layers` must be at least 1. Received: patch_layers={patch_layers}")
        if not 0.0 <= batch_norm_momentum < 1.0:
            raise ValueError(f"`batch_norm_momentum` must be in [0, 1). Received: batch_norm_momentum={batch_norm_momentum}")
        if not 0.0 <= decay_fraction <= 1.0:
            raise ValueError(f"`decay_fraction` must be in [0, 1]. Received: decay_fraction={decay_fraction}")
        self.width = int(width)
        self.l1_weight = float(l1_weight)
        self.gan_weight = float(gan_weight)
        self.real_label = float(real_label)
        self.dropout = float(dropout)
        self.patch_layers = int(patch_layers)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.decay_fraction = float(decay_fraction)
        self.planned_steps = None
        self.generator = unet_generator(self.source_shape, self.image_shape[-1], self.width, self.dropout,
                                        batch_norm_momentum=self.batch_norm_momentum)
        self.discriminator = patch_discriminator(self.image_shape, self.width, self.patch_layers, source_shape=self.source_shape)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.g_gan_tracker = keras.metrics.Mean(name="g_gan")
        self.l1_tracker = keras.metrics.Mean(name="l1")
        self.real_probability_tracker = keras.metrics.Mean(name="d_real")
        self.fake_probability_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True

    def optimizer_networks(self):
        return {"discriminator": [self.discriminator], "generator": [self.generator]}

    def plan_training(self, total_steps):
        """The run's length: the last `decay_fraction` of it decays the learning rates."""
        self.planned_steps = int(total_steps)

    def default_optimizers(self):
        """Adam(2e-4, beta_1=0.5) for D and G; with `decay_fraction` and a planned run, constant and
        then linearly down to 0 over the run's last `decay_fraction` (`ConstantThenLinearDecay`)."""
        rate = decaying_rate(2e-4, self.planned_steps, self.decay_fraction)
        return {role: keras.optimizers.Adam(rate, beta_1=0.5, name=f"{role}_adam") for role in self.optimizer_networks()}

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.g_gan_tracker, self.l1_tracker,
                self.real_probability_tracker, self.fake_probability_tracker]

    def train_step(self, data):
        inputs, targets = self.unpack(data)
        seeds = self.training_seeds(ops.shape(inputs)[0])

        with tf.GradientTape() as g_tape:
            fakes = self.generator([inputs, seeds], training=True)
            with g_tape.stop_recording():
                d_losses, real_logits, fake_logits = self.discriminator_step(inputs, targets, fakes)
            gan_losses = losses.minimax_generator_loss(self.discriminator([inputs, fakes], training=True))
            l1_losses = losses.l1_loss(fakes, targets)
            g_losses = self.gan_weight * gan_losses + self.l1_weight * l1_losses
            g_loss = tf.nn.compute_average_loss(g_losses)
        self.apply_gradients("generator", g_loss, g_tape, [self.generator])

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.g_gan_tracker.update_state(gan_losses)
        self.l1_tracker.update_state(l1_losses)
        self.real_probability_tracker.update_state(ops.sigmoid(real_logits))
        self.fake_probability_tracker.update_state(ops.sigmoid(fake_logits))
        return self.train_step_logs()

    def discriminator_step(self, inputs, targets, fakes):
        """One D update on real pairs and `fakes` (held fixed); returns `(d_losses, real, fake logits)`.
        Without an adversarial term (`gan_weight=0`) D is only evaluated, not trained."""
        with tf.GradientTape() as tape:
            real_logits = self.discriminator([inputs, targets], training=True)
            fake_logits = self.discriminator([inputs, ops.stop_gradient(fakes)], training=True)
            d_losses = 0.5 * losses.minimax_discriminator_loss(real_logits, fake_logits, self.real_label)
            d_loss = tf.nn.compute_average_loss(d_losses)
        if self.gan_weight > 0:
            self.apply_gradients("discriminator", d_loss, tape, [self.discriminator])
        return d_losses, real_logits, fake_logits

    def directions(self):
        return {"translate": Direction(self.source_shape, self.image_shape,
                                       lambda images, seeds: self.generator([images, seeds], training=False),
                                       stochastic=self.dropout > 0)}

    def call(self, inputs, training=False):
        """`G([images, seeds])`: the translation of `images` (float, value range) with dropout
        keyed by `seeds` (int32 `[batch, 2]`)."""
        return self.generator(inputs, training=training)

    def train_step_flops_per_image(self):
        """G forward and backward (3 F_G); D forward and backward on a real and a fake pair (6 F_D)
        and forward plus input-gradient for G's term (2 F_D)."""
        return 3 * forward_flops_per_example(self.generator) + 8 * forward_flops_per_example(self.discriminator)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "l1_weight": self.l1_weight, "gan_weight": self.gan_weight,
                "real_label": self.real_label, "dropout": self.dropout, "patch_layers": self.patch_layers,
                "batch_norm_momentum": self.batch_norm_momentum, "decay_fraction": self.decay_fraction}
