"""WGAN-GP: a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty.

References:
    Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein
    GANs", https://arxiv.org/abs/1704.00028
    Arjovsky, Chintala & Bottou 2017, "Wasserstein GAN", https://arxiv.org/abs/1701.07875
"""

import functools

import keras
import tensorflow as tf

from gan_tf.models.gan import GAN
from gan_tf.nn import losses
from gan_tf.nn.networks import check_image_shape, check_width, dcgan_discriminator, dcgan_generator
from gan_tf.nn.noise import replica_slice
from gan_tf.nn.profiling import forward_flops_per_example


@keras.saving.register_keras_serializable(package="gan_tf")
class WGANGP(GAN):
    """Wasserstein GAN with gradient penalty (or, with `clip_value`, the original weight clipping).

    The critic is the DCGAN discriminator without dropout and without a sigmoid: it outputs an
    unbounded score, and `E[D(x)] - E[D(G(z))]` estimates the Wasserstein-1 distance while D is
    1-Lipschitz. Each train step runs `d_steps` critic updates (5 by default; each on fresh
    noise) that minimise `D(G(z)) - D(x) + gp_weight * (||grad D(x_hat)|| - 1)^2` at interpolates
    `x_hat = e x + (1 - e) G(z)`, `e ~ U[0, 1]` per example; then one generator update that
    minimises `-D(G(z))`. Trackers: `d_loss` (with the penalty), `g_loss`, `wasserstein` (the
    critic's distance estimate) and `gradient_penalty` (unweighted). No batch norm in the
    critic (the penalty is per example); the generator keeps DCGAN's.

    With `clip_value` set (and `gp_weight=0`), it is the original WGAN: every critic weight is
    clipped to `[-clip_value, clip_value]` after each critic update, with RMSprop(5e-5).

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        latent_dim: size of z.
        width: channel unit of both networks (see `DCGAN`).
        gp_weight: the penalty's weight, lambda (10 in the paper); 0 turns it off.
        clip_value: clip critic weights to this magnitude (original WGAN); None: no clipping.
        d_steps: critic updates per generator update (n_critic, 5 in both papers).
        noise, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = WGANGP(image_shape=(28, 28, 1), seed=0)
        >>> gan.compile()  # Adam(1e-4, beta_1=0, beta_2=0.9) for both, as in the paper
        >>> gan.fit(load_dataset("mnist_5k", 64), epochs=20)

    References:
        Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
        https://arxiv.org/abs/1704.00028; Arjovsky et al. 2017, "Wasserstein GAN",
        https://arxiv.org/abs/1701.07875
    """

    fixed_arguments = ("real_label", "ada_target", "ada_interval", "ada_images")  # no targets: the critic scores
    ada_refusal = "ADA's overfitting signal is the sign of D's logit, and a critic's score has no fixed zero"

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        width=64,
        gp_weight=10.0,
        clip_value=None,
        d_steps=5,
        noise="gaussian",
        seed=None,
        **kwargs,
    ):
        if gp_weight < 0:
            raise ValueError(f"`gp_weight` must be at least 0. Received: gp_weight={gp_weight}")
        if clip_value is not None and not clip_value > 0:
            raise ValueError(f"`clip_value` must be positive or None. Received: clip_value={clip_value}")
        if gp_weight == 0 and clip_value is None:
            raise ValueError("WGANGP needs a Lipschitz constraint: a positive `gp_weight` or a `clip_value`.")
        self.image_shape = check_image_shape(image_shape)
        self.width = check_width(width)
        self.gp_weight = float(gp_weight)
        self.clip_value = None if clip_value is None else float(clip_value)
        super().__init__(
            generator=dcgan_generator(latent_dim, self.image_shape, self.width),
            discriminator=dcgan_discriminator(self.image_shape, dropout=0.0, width=self.width),
            latent_dim=latent_dim,
            noise=noise,
            real_label=1.0,  # unused: the critic has no targets
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")
        self.gradient_penalty_tracker = keras.metrics.Mean(name="gradient_penalty")

    def default_optimizers(self):
        """Adam(1e-4, beta_1=0, beta_2=0.9) (Gulrajani et al.); RMSprop(5e-5) when clipping."""
        if self.clip_value is not None:
            return {
                "discriminator": keras.optimizers.RMSprop(5e-5, name="d_rmsprop"),
                "generator": keras.optimizers.RMSprop(5e-5, name="g_rmsprop"),
            }
        return {
            "discriminator": keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9, name="d_adam"),
            "generator": keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9, name="g_adam"),
        }

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.wasserstein_tracker, self.gradient_penalty_tracker]

    def sample_interpolation_weights(self, batch_size):
        """This replica's `[batch]` interpolation weights, uniform in [0, 1]."""
        return replica_slice(lambda size: keras.random.uniform((size,), seed=self.seed_generator), batch_size)

    def train_step(self, data):
        real_images = self.unpack_images(data)
        batch_size = keras.ops.shape(real_images)[0]
        critic = functools.partial(self.discriminator, training=True)

        for _ in range(self.d_steps):
            fake_images = self.generator(self.sample_noise(batch_size), training=True)
            weights = self.sample_interpolation_weights(batch_size)
            real_seen, fake_seen = self.augment_images(real_images), self.augment_images(fake_images)
            with tf.GradientTape() as tape:
                real_scores = critic(real_seen)
                fake_scores = critic(fake_seen)
                critic_losses = losses.wasserstein_critic_loss(real_scores, fake_scores)
                penalties = keras.ops.zeros_like(critic_losses)
                if self.gp_weight:
                    penalties = losses.gradient_penalty(critic, real_seen, fake_seen, weights)
                d_losses = critic_losses + self.gp_weight * penalties + self.lazy_r1_penalty(critic, real_seen)
                d_losses += self.consistency_penalty(critic, real_seen, real_scores, fake_seen, fake_scores)
                d_loss = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_losses))
            d_variables = self.discriminator.trainable_variables
            self.d_optimizer.apply(tape.gradient(d_loss, d_variables), d_variables)
            if self.clip_value is not None:
                for variable in d_variables:
                    variable.assign(keras.ops.clip(variable, -self.clip_value, self.clip_value))

        noise = self.sample_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_scores_for_g = critic(self.augment_images(self.generator(noise, training=True)))
            g_losses = losses.wasserstein_generator_loss(fake_scores_for_g)
            g_loss = self.g_optimizer.scale_loss(self.average_generator_loss(g_losses))
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_variables), g_variables)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.wasserstein_tracker.update_state(-critic_losses)
        self.gradient_penalty_tracker.update_state(penalties)
        return self.train_step_logs()

    def train_step_flops_per_image(self):
        """About `d_steps * (F_G + 12 F_D) + 3 F_G + 2 F_D`: the penalty adds, per critic step,
        a critic forward and input-gradient pass on the interpolates (2 F_D) and the backward
        of both (about 4 F_D)."""
        generator_flops = forward_flops_per_example(self.generator)
        critic_flops = forward_flops_per_example(self.discriminator)
        penalty_flops = 6 * critic_flops if self.gp_weight else 0
        return (
            self.d_steps * (generator_flops + 6 * critic_flops + penalty_flops)
            + 3 * generator_flops
            + 2 * critic_flops
        )

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"], config["real_label"]
        for key in ("ada_target", "ada_interval", "ada_images"):
            del config[key]
        return {
            **config,
            "image_shape": self.image_shape,
            "width": self.width,
            "gp_weight": self.gp_weight,
            "clip_value": self.clip_value,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
