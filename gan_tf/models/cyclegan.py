"""CycleGAN: two translators between unpaired domains, each the other's inverse.

Reference:
    Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
    Adversarial Networks", https://arxiv.org/abs/1703.10593 (sections 3-4, appendix 7); the
    reference code is junyanz/pytorch-CycleGAN-and-pix2pix (`cycle_gan_model.py`, `image_pool.py`).
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.translation import Direction, TranslationModel, decaying_rate
from gan_tf.nn import losses
from gan_tf.nn.layers import ImagePool
from gan_tf.nn.profiling import forward_flops_per_example
from gan_tf.nn.translation_networks import patch_discriminator, resnet_generator


@keras.saving.register_keras_serializable(package="gan_tf")
class CycleGAN(TranslationModel):
    """CycleGAN: G (A -> B) and F (B -> A), with a PatchGAN D_B judging B images and D_A judging A.

    `train_step` per batch of an A batch `a` and a B batch `b` (not pairs): translates `G(a)`,
    `F(b)` and back (`F(G(a))`, `G(F(b))`), and, for the identity term, `G(b)` and `F(a)`; then
    updates each D once on `0.5 * [(D(real) - real_label)^2 + D(fake)^2]` (least squares, halved),
    its fakes drawn from a pool of the last `pool_size` translations; then both generators on
    `(D_B(G(a)) - 1)^2 + (D_A(F(b)) - 1)^2 + cycle_weight * (|F(G(a)) - a| + |G(F(b)) - b|) +
    identity_weight * cycle_weight * (|G(b) - b| + |F(a) - a|)`; then the trackers `d_a_loss`,
    `d_b_loss`, `g_loss`, `adversarial`, `cycle`, `identity`. Four Adam(2e-4, beta_1=0.5)
    optimizers (G, F, D_A, D_B), whose learning rate stays constant for the first half of the run
    and falls linearly to 0 over the second (`ConstantThenLinearDecay`, from the run's length the
    trainer gives `plan_training`; a model never told keeps 2e-4).

    The identity term needs both domains of one shape (it feeds B images to G); otherwise it is
    left out. Translation is deterministic (no dropout).

    Args:
        source_shape: `(H, W, C)` of domain A; image_shape: of domain B. Sides divisible by 4.
        width: channels of the first convolution (64 in the paper).
        residual_blocks: None (6 at 128 px and below, 9 above, as the paper) or a count.
        cycle_weight: lambda of the cycle terms (10).
        identity_weight: the identity terms' weight as a fraction of `cycle_weight` (0.5).
        pool_size: past translations per direction the discriminators are shown (50; 0: none).
        real_label: D's target for real images (0.9: one-sided label smoothing, as every model here).
        patch_layers: stride-2 levels of each D (3: 70x70 patches at 256 px).
        seed: seed of the pool's random draws.

    Example:
        >>> source = open_source("thin2bold_mnist")
        >>> model = CycleGAN.from_data(source.info, width=32, seed=0)
        >>> model.plan_training(10_000)  # the learning-rate schedule's horizon
        >>> model.compile_optimizers({})
        >>> model.fit(source.dataset(16, seed=0, repeat=True), epochs=20, steps_per_epoch=500)
        >>> bold = model.translate(thin_digits, direction="a_to_b")
    """

    pairing = "unpaired"
    default_batch_size = 8

    def __init__(self, source_shape=(28, 28, 1), image_shape=(28, 28, 1), width=64, residual_blocks=None,
                 cycle_weight=10.0, identity_weight=0.5, pool_size=50, real_label=0.9, patch_layers=3, seed=None,
                 **kwargs):
        super().__init__(source_shape=source_shape, image_shape=image_shape, seed=seed, **kwargs)
        for name, value in (("cycle_weight", cycle_weight), ("identity_weight", identity_weight)):
            if value < 0:
                raise ValueError(f"`{name}` must be at least 0. Received: {name}={value}")
        if width < 1:
            raise ValueError(f"`width` must be at least 1. Received: width={width}")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"`real_label` must be in (0, 1]. Received: real_label={real_label}")
        if residual_blocks is not None and residual_blocks < 0:
            raise ValueError(f"`residual_blocks` must be at least 0 or None. Received: residual_blocks={residual_blocks}")
        self.width = int(width)
        self.residual_blocks = None if residual_blocks is None else int(residual_blocks)
        self.cycle_weight = float(cycle_weight)
        self.identity_weight = float(identity_weight)
        self.pool_size = int(pool_size)
        self.real_label = float(real_label)
        self.patch_layers = int(patch_layers)
        self.planned_steps = None
        a, b = self.source_shape, self.image_shape
        self.generator_ab = resnet_generator(a, b[-1], self.width, self.residual_blocks, name="generator_ab")
        self.generator_ba = resnet_generator(b, a[-1], self.width, self.residual_blocks, name="generator_ba")
        self.discriminator_a = patch_discriminator(a, self.width, self.patch_layers, norm="instance")
        self.discriminator_a.name = "discriminator_a"
        self.discriminator_b = patch_discriminator(b, self.width, self.patch_layers, norm="instance")
        self.discriminator_b.name = "discriminator_b"
        self.pool_a = ImagePool(self.pool_size, a, name="pool_a")
        self.pool_b = ImagePool(self.pool_size, b, name="pool_b")
        self.uses_identity = a == b and self.identity_weight > 0
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("d_a_loss", "d_b_loss", "g_loss", "adversarial", "cycle", "identity")}
        self.built = True

    def optimizer_networks(self):
        return {"generator_ab": [self.generator_ab], "generator_ba": [self.generator_ba],
                "discriminator_a": [self.discriminator_a], "discriminator_b": [self.discriminator_b]}

    def plan_training(self, total_steps):
        """The schedule's horizon: constant for `total_steps // 2` steps, then down to 0."""
        self.planned_steps = int(total_steps)

    def default_optimizers(self):
        rate = decaying_rate(2e-4, self.planned_steps, 0.5)
        return {role: keras.optimizers.Adam(rate, beta_1=0.5, name=f"{role}_adam") for role in self.optimizer_networks()}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def pool_draws(self, batch_size):
        """Uniform draws and slots for one pool query, from the model's saved noise stream."""
        draws = keras.random.uniform((batch_size,), seed=self.seed_generator)
        slots = keras.random.randint((batch_size,), 0, max(1, self.pool_size), seed=self.seed_generator, dtype="int32")
        return draws, slots

    def train_step(self, data):
        real_a, real_b = self.unpack(data)
        batch_size = ops.shape(real_a)[0]

        with tf.GradientTape() as g_tape:
            fake_b, fake_a = self.generator_ab(real_a, training=True), self.generator_ba(real_b, training=True)
            cycled_a, cycled_b = self.generator_ba(fake_b, training=True), self.generator_ab(fake_a, training=True)
            with g_tape.stop_recording():
                d_a_losses = self.discriminator_step("discriminator_a", self.discriminator_a, real_a,
                                                     self.pool_a.query(fake_a, *self.pool_draws(batch_size)))
                d_b_losses = self.discriminator_step("discriminator_b", self.discriminator_b, real_b,
                                                     self.pool_b.query(fake_b, *self.pool_draws(batch_size)))
            adversarial = (losses.least_squares_generator_loss(self.discriminator_b(fake_b, training=True))
                           + losses.least_squares_generator_loss(self.discriminator_a(fake_a, training=True)))
            cycle = losses.cycle_consistency_loss(real_a, cycled_a) + losses.cycle_consistency_loss(real_b, cycled_b)
            identity = ops.zeros_like(cycle)
            if self.uses_identity:
                identity = (losses.identity_loss(real_b, self.generator_ab(real_b, training=True))
                            + losses.identity_loss(real_a, self.generator_ba(real_a, training=True)))
            g_losses = adversarial + self.cycle_weight * (cycle + self.identity_weight * identity)
            g_loss = tf.nn.compute_average_loss(g_losses)
        generators = {"generator_ab": self.generator_ab, "generator_ba": self.generator_ba}
        variables = [v for network in generators.values() for v in network.trainable_variables]
        gradients = g_tape.gradient(g_loss, variables)
        start = 0
        for role, network in generators.items():  # one loss, each generator's own optimizer
            count = len(network.trainable_variables)
            getattr(self, f"{role}_optimizer").apply(gradients[start : start + count], network.trainable_variables)
            start += count

        for name, values in (("d_a_loss", d_a_losses), ("d_b_loss", d_b_losses), ("g_loss", g_losses),
                             ("adversarial", adversarial), ("cycle", cycle), ("identity", identity)):
            self.trackers[name].update_state(values)
        return self.train_step_logs()

    def discriminator_step(self, role, discriminator, real, shown_fakes):
        """One least-squares update of `discriminator` (halved, as the paper); returns its losses."""
        with tf.GradientTape() as tape:
            d_losses = 0.5 * losses.least_squares_discriminator_loss(
                discriminator(real, training=True), discriminator(ops.stop_gradient(shown_fakes), training=True),
                self.real_label)
            d_loss = tf.nn.compute_average_loss(d_losses)
        self.apply_gradients(role, d_loss, tape, [discriminator])
        return d_losses

    def directions(self):
        return {
            "a_to_b": Direction(self.source_shape, self.image_shape,
                                lambda images, seeds: self.generator_ab(images, training=False), stochastic=False),
            "b_to_a": Direction(self.image_shape, self.source_shape,
                                lambda images, seeds: self.generator_ba(images, training=False), stochastic=False,
                                reverse=True),
        }

    def preview_columns(self, inputs, targets, seed):
        """`[a, G(a), F(G(a))]`: an A image, its translation and its reconstruction."""
        translated = self.translate(inputs, direction="a_to_b")
        return [inputs, translated, self.translate(translated, direction="b_to_a")]

    def call(self, inputs, training=False):
        """`G(a)`: A images (float, value range) translated to B."""
        return self.generator_ab(inputs, training=training)

    def train_step_flops_per_image(self):
        """Per A/B image pair: six generator passes forward (two translations, two
        reconstructions, two identity maps) and backward (3x each); each D forward and backward on
        a real and a pooled fake (6 F_D) and forward plus input gradient for G's term (2 F_D)."""
        passes = 6 if self.uses_identity else 4
        generators = forward_flops_per_example(self.generator_ab) + forward_flops_per_example(self.generator_ba)
        discriminators = forward_flops_per_example(self.discriminator_a) + forward_flops_per_example(self.discriminator_b)
        return 3 * passes / 2 * generators + 8 * discriminators

    def get_config(self):
        return {**super().get_config(), "width": self.width, "residual_blocks": self.residual_blocks,
                "cycle_weight": self.cycle_weight, "identity_weight": self.identity_weight, "pool_size": self.pool_size,
                "real_label": self.real_label, "patch_layers": self.patch_layers}
