"""`GAN`: the base Keras model for adversarial training with `model.fit`.

Reference:
    Goodfellow et al. 2014, "Generative Adversarial Nets", Algorithm 1 (k discriminator
    steps, then one generator step) with the non-saturating generator loss; Salimans et al.
    2016, "Improved Techniques for Training GANs" (one-sided label smoothing).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_tf.models.generative import GenerativeModel, RoleOptimizers, Samples
from gan_tf.models.multi_worker import MultiWorkerWorkarounds
from gan_tf.nn import ema, losses
from gan_tf.nn.augment import DiffAugment, check_padding, parse_policy
from gan_tf.nn.noise import NOISE_DISTRIBUTIONS, replica_slice, stateless_noise
from gan_tf.nn.profiling import forward_flops_per_example
from gan_tf.serving import gan_signatures

def check_num_classes(num_classes):
    """`num_classes` as an int, or a ValueError if there are fewer than 2 classes."""
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes}")
    return int(num_classes)


def mismatched_labels(labels, num_classes, seed_generator):
    """A wrong label for each of `labels`, uniform over the other classes, from `seed_generator`
    (this replica's slice of the global batch's draw): what a matching-aware D sees real
    images with (Reed et al. 2016)."""
    offsets = replica_slice(
        lambda global_size: keras.random.randint((global_size,), 1, num_classes, dtype="int32", seed=seed_generator),
        ops.shape(labels)[0],
    )
    return (labels + offsets) % num_classes


def _check_network(network, role):
    if not isinstance(network, keras.Model):
        raise TypeError(f"`{role}` must be a keras.Model. Received: {type(network).__name__}")
    if not network.built:
        raise ValueError(
            f"`{role}` must be built (call it once on a batch, or use a functional model) "
            "so that its optimizer can be built over its variables."
        )


def _get_optimizer(optimizer, default):
    optimizer = keras.optimizers.get(optimizer) if optimizer is not None else default
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"Expected a keras optimizer. Received: {optimizer!r}")
    return optimizer


class GANOptimizers(RoleOptimizers):
    """What Keras sees as `model.optimizer` of a GAN: both optimizers, one step counter.

    A `RoleOptimizers` view of "discriminator" and "generator" (TensorBoard logs
    `learning_rate_discriminator` and `learning_rate_generator`), counting `iterations` by
    generator updates: one per train step whatever `d_steps` is. It owns no state; the
    optimizers are saved as the GAN's `d_optimizer` and `g_optimizer`.
    """

    def __init__(self, d_optimizer, g_optimizer):
        super().__init__({"discriminator": d_optimizer, "generator": g_optimizer}, counting_role="generator")
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    def __repr__(self):
        return f"GANOptimizers(d_optimizer={self.d_optimizer.name!r}, g_optimizer={self.g_optimizer.name!r})"


@keras.saving.register_keras_serializable(package="gan_tf")
class GAN(MultiWorkerWorkarounds, GenerativeModel):
    """An unconditional GAN: a generator and a discriminator trained against each other.

    `train_step` runs, per batch of real images: `d_steps` discriminator updates (each on
    fresh noise), then one generator update with the non-saturating loss, then updates the
    `Mean` trackers `d_loss`, `g_loss`, `d_real` (D's mean probability that real images are
    real) and `d_fake` (the same on generated images). The discriminator's real targets are
    `real_label` (one-sided label smoothing), its fake targets 0; the generator's targets are
    1. Each D step reuses the batch's real images, as in the Keras WGAN-GP example.

    Losses are reduced with `tf.nn.compute_average_loss` (divided by the global batch) and the
    trackers are fed per-example values, so logged numbers are true per-example means and
    gradients keep their size when replicas' gradients are summed under `tf.distribute`.

    Noise comes from a `keras.random.SeedGenerator` owned by the model. Each replica draws the
    noise of the whole global batch from the same seed and keeps its own slice, so replicas get
    different noise, and N replicas see exactly the noise one device would.

    Args:
        generator: a built `keras.Model` from `[batch, latent_dim]` to images.
        discriminator: a built `keras.Model` from images to logits (`[batch, 1]`, or any
            `[batch, ...]` shape for patch discriminators). It outputs logits, not
            probabilities.
        latent_dim: size of the noise vector z.
        noise: "gaussian" (N(0, 1)) or "uniform" (U[-1, 1]).
        real_label: D's target for real images, in (0, 1]; 0.9 is one-sided smoothing.
        d_steps: discriminator updates per generator update (the k of Algorithm 1).
        seed: seed of the noise stream (None: a random seed).
        ema_decay: keep an exponential moving average of G's weights with this decay (in
            [0, 1), with a short warm-up; see `gan_tf.nn.ema`), updated after every train step,
            and sample and export from it (`sampling_generator`); None: no average. Averaged
            generators oscillate less (Yazici et al. 2019) and BigGAN samples from one. On by
            default (0.999) from measurement: `bench/quality.py --epochs=20` on mnist_5k took
            DCGAN's FID from 105.3 to 88.7 and the CGAN's from 52.2 to 17.7
            (docs/results/gans.md).
        sample_from_average: with `ema_decay` set, whether samples and exports come from the
            average (True) or from G's own weights (False; the average is still kept, so either
            can be exported from the same checkpoint: export.py --model_arg).
        augment: None, or differentiable augmentations (a subset of "color", "translation",
            "cutout", as a list or "color,translation,cutout"): DiffAugment (Zhao et al. 2020,
            arXiv 2006.10738), applied per example to every image D sees in training, real and
            fake, in D's step and in G's (`augment_images`). Samples are not augmented.
        augment_padding: what `augment`'s translation uncovers: "constant" (the middle of the
            value range: DiffAugment's zeros) or "reflect" (the image mirrored at its border, as
            ADA pads). Digits on black showed the constant strips' edges in some samples after
            long ADA training (docs/results/gans.md, "Small data").
        ada_target: None, or adapt how often the augmentations apply (ADA, Karras et al. 2020,
            arXiv 2006.06676): each of `augment`'s transforms is applied to each image with
            probability p, which starts at 0 and every `ada_interval` D steps moves up when
            D's overfitting signal r_t = E[sign(D(real))] over those steps is above
            `ada_target` (the paper's 0.6), down when below, clipped to [0, 1]. Needs `augment`.
            p and r_t are logged (`augment_p`, `d_real_sign`) and saved with the model.
        r1_weight: None, or gamma of the R1 penalty `gamma / 2 * ||grad D(x)||^2` at real images
            (as D sees them; Mescheder et al. 2018, arXiv 1801.04406), added to D's loss lazily:
            every `r1_interval` D steps, scaled by the interval (StyleGAN2, Karras et al. 2020).
        r1_interval: D steps between R1 penalties (StyleGAN2's 16; 1: every step).
        consistency_weight: None, or lambda of balanced consistency regularization (bCR, Zhao et
            al. 2020, arXiv 2002.04724): D's loss gains `lambda * (D(T(x)) - D(x))^2` on real and
            on generated images, T a random `consistency_augment` transform, so D gives an image
            and its shifted copy one score (the paper's lambda: 10 for both). Costs D two more
            passes per D step; samples are not transformed.
        consistency_augment: T's transforms (as `augment`; translation by default: digits must
            not be flipped).
        top_k: None, or top-k training (Sinha et al. 2020, arXiv 2002.06224): G learns only from
            the k fakes of each global batch that D rates most real (lowest G loss): the paper
            finds the worst-rated fakes pull G away from the data's modes. k starts at the
            whole batch and falls by `top_k_decay` every `top_k_interval` G updates until it is
            `top_k` of the batch (the paper's nu, 0.5 or 0.75). Replicas agree on one k and one
            threshold over the global batch, so 2 replicas keep what 1 device would.
        top_k_decay: the factor k falls by (the paper's gamma, 0.99 per epoch).
        top_k_interval: G updates between two falls of k (the paper's epoch; 156 is one epoch of
            mnist_5k at batch 32).
        ada_interval: D steps between adjustments of p (the paper's 4).
        ada_images: real images D must see for p to move from 0 to 1 at the fastest (the
            paper's 500,000 suits its runs of millions of images; gan_tf's runs on 2 cores see
            about 100,000, so 50,000 lets p rise within one).
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
        >>> gan = GAN(generator, discriminator, latent_dim=64)
        >>> gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> gan.fit(dataset, epochs=10)
        >>> images = gan.generate(16, seed=0)
    """

    # `value_range`, `default_batch_size`, `default_steps_per_execution` and `needs_labels`:
    # see `GenerativeModel` (the MLP GAN runs 16 steps per call: bench/throughput.py).
    # Whether the generator takes class labels (`[z, labels]`) as well as noise.
    conditional = False
    # Whether the exported `sample` signatures take a `truncation` input (gan_tf.serving.gan_signatures).
    exports_truncation = False
    # Whether `train_step` shows D its images through `augment_images`; if not, what D sees instead.
    applies_augment = True
    augment_refusal = ""
    # Whether `train_step` adds `lazy_r1_penalty` to D's loss.
    applies_r1 = True
    # Why the model cannot give ADA its overfitting signal (`track_real_logits`), if it cannot.
    ada_refusal = ""

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim=100,
        noise="gaussian",
        real_label=0.9,
        d_steps=1,
        seed=None,
        ema_decay=0.999,
        sample_from_average=True,
        augment=None,
        augment_padding="constant",
        ada_target=None,
        ada_interval=4,
        ada_images=50_000,
        r1_weight=None,
        r1_interval=16,
        consistency_weight=None,
        consistency_augment="translation",
        top_k=None,
        top_k_decay=0.99,
        top_k_interval=156,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_network(generator, "generator")
        _check_network(discriminator, "discriminator")
        if latent_dim < 1:
            raise ValueError(f"`latent_dim` must be at least 1. Received: latent_dim={latent_dim}")
        if noise not in NOISE_DISTRIBUTIONS:
            raise ValueError(f"`noise` must be one of {NOISE_DISTRIBUTIONS}. Received: noise={noise!r}")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"`real_label` must be in (0, 1]. Received: real_label={real_label}")
        if d_steps < 1:
            raise ValueError(f"`d_steps` must be at least 1. Received: d_steps={d_steps}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.noise = noise
        self.real_label = float(real_label)
        self.d_steps = int(d_steps)
        if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1) or None. Received: ema_decay={ema_decay}")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.augment = parse_policy(augment)
        if self.augment and not self.applies_augment:
            raise ValueError(f"{type(self).__name__} does not apply `augment` (its discriminator sees "
                             f"{self.augment_refusal}). Received: augment={augment!r}")
        # Its draws come from the noise stream, after the noise: no stream to add to checkpoints,
        # and with `augment` off the stream is what it always was.
        self.augment_padding = check_padding(augment_padding)
        self.augmenter = (DiffAugment(self.augment, self.value_range, self.seed_generator, self.augment_padding)
                          if self.augment else None)
        self._init_adaptive_augmentation(ada_target, ada_interval, ada_images, augment)
        self.r1_weight = None if r1_weight is None else float(r1_weight)
        self.r1_interval = int(r1_interval)
        if self.r1_weight is not None and not self.applies_r1:
            raise ValueError(f"{type(self).__name__} does not apply `r1_weight` (its discriminator sees "
                             f"{self.augment_refusal}). Received: r1_weight={r1_weight!r}")
        if (self.r1_weight is not None and self.r1_weight < 0) or self.r1_interval < 1:
            raise ValueError(f"`r1_weight` must be >= 0 and `r1_interval` >= 1. Received: r1_weight={r1_weight}, "
                             f"r1_interval={r1_interval}")
        self._init_consistency_regularization(consistency_weight, consistency_augment)
        self.top_k = None if top_k is None else float(top_k)
        self.top_k_decay = float(top_k_decay)
        self.top_k_interval = int(top_k_interval)
        if (self.top_k is not None and not 0.0 < self.top_k <= 1.0) or not 0.0 < self.top_k_decay <= 1.0 \
                or self.top_k_interval < 1:
            raise ValueError(f"`top_k` must be in (0, 1] or None, `top_k_decay` in (0, 1] and `top_k_interval` >= 1. "
                             f"Received: top_k={top_k}, top_k_decay={top_k_decay}, top_k_interval={top_k_interval}")
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.sample_from_average = bool(sample_from_average)
        self.ema_generator = None
        if self.ema_decay is not None:
            try:
                self.ema_generator = keras.models.clone_model(generator)
            except ValueError as error:  # e.g. a Lambda layer, which Keras will not rebuild from its config
                raise ValueError(f"`ema_decay` keeps a copy of the generator, and keras.models.clone_model cannot "
                                 f"copy this one ({str(error).splitlines()[0][:160]}); pass ema_decay=None to train "
                                 "without the average.") from error
            self.ema_generator.name = "ema_generator"
            self.ema_generator.set_weights(generator.get_weights())
            self.ema_generator.trainable = False
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_probability_tracker = keras.metrics.Mean(name="d_real")
        self.fake_probability_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True

    def _init_adaptive_augmentation(self, ada_target, ada_interval, ada_images, augment):
        """ADA's settings, and its state as non-trainable weights (saved with the model, so a
        resumed run adapts exactly as the uninterrupted one): p, and the interval's running sum
        and count of sign(D(real))."""
        self.ada_target = None if ada_target is None else float(ada_target)
        self.ada_interval = int(ada_interval)
        self.ada_images = int(ada_images)
        if self.ada_target is None:
            return
        if self.ada_refusal:
            raise ValueError(f"{type(self).__name__} cannot adapt its augmentation: {self.ada_refusal}. "
                             f"Received: ada_target={ada_target!r}")
        if not self.augment:
            raise ValueError("`ada_target` adapts how often `augment`'s transforms apply: give `augment` too "
                             f"(e.g. augment='color,translation,cutout'). Received: ada_target={ada_target!r}, augment={augment!r}")
        if not 0.0 < self.ada_target < 1.0:
            raise ValueError(f"`ada_target` must be in (0, 1) (the paper's 0.6). Received: ada_target={ada_target}")
        if self.ada_interval < 1 or self.ada_images < 1:
            raise ValueError(f"`ada_interval` and `ada_images` must be at least 1. Received: "
                             f"ada_interval={ada_interval}, ada_images={ada_images}")

        def state(name):
            return self.add_weight(shape=(), initializer="zeros", trainable=False,
                                   aggregation="only_first_replica", name=name)

        self.augment_probability = state("augment_probability")
        self.real_sign_sum = state("ada_real_sign_sum")
        self.real_sign_count = state("ada_real_sign_count")
        self.augment_probability_tracker = keras.metrics.Mean(name="augment_p")
        self.real_sign_tracker = keras.metrics.Mean(name="d_real_sign")

    def _init_consistency_regularization(self, consistency_weight, consistency_augment):
        self.consistency_weight = None if consistency_weight is None else float(consistency_weight)
        self.consistency_augment = parse_policy(consistency_augment)
        self.consistency_transform = None
        if self.consistency_weight is None:
            return
        if not self.applies_augment:
            raise ValueError(f"{type(self).__name__} does not apply `consistency_weight` (its discriminator sees "
                             f"{self.augment_refusal}). Received: consistency_weight={consistency_weight!r}")
        if not self.consistency_weight > 0 or not self.consistency_augment:
            raise ValueError("`consistency_weight` must be positive and `consistency_augment` name at least one "
                             f"transform. Received: consistency_weight={consistency_weight!r}, "
                             f"consistency_augment={consistency_augment!r}")
        # Draws from the noise stream, after the step's other draws: no new state in checkpoints.
        self.consistency_transform = DiffAugment(self.consistency_augment, self.value_range, self.seed_generator)

    # ----------------------------------------------------------------------------- compile

    def default_optimizers(self):
        """`{"discriminator": ..., "generator": ...}`, used when `compile` is given none.

        Adam(2e-4, beta_1=0.5) for both, as in Radford et al. (2015) and the Keras GAN.
        """
        return {
            "discriminator": keras.optimizers.Adam(2e-4, beta_1=0.5, name="d_adam"),
            "generator": keras.optimizers.Adam(2e-4, beta_1=0.5, name="g_adam"),
        }

    def compile_optimizers(self, optimizers, **compile_kwargs):
        """`compile` with `{"discriminator": ..., "generator": ...}` (the contract's form)."""
        unknown = set(optimizers) - {"discriminator", "generator"}
        if unknown:
            raise ValueError(f"A GAN's optimizer roles are 'discriminator' and 'generator'. Received: {sorted(unknown)}")
        self.compile(d_optimizer=optimizers.get("discriminator"), g_optimizer=optimizers.get("generator"), **compile_kwargs)

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Configures the two optimizers and builds each over its own network's variables.

        Building them here (not lazily in the first step) is what lets `tf.distribute` run the
        step and lets checkpoints restore the optimizers' state. A GAN built under the
        "mixed_float16" dtype policy gets both optimizers wrapped in a `LossScaleOptimizer`
        (dynamic loss scaling), as `keras.Model.compile` does for its single optimizer.

        Args:
            d_optimizer: optimizer (instance, name or config) for the discriminator.
            g_optimizer: optimizer for the generator; must be a different instance.
            **kwargs: passed to `keras.Model.compile` (`run_eagerly`, `jit_compile`,
                `steps_per_execution`, ...). `optimizer`, `loss` and `metrics` are not
                accepted: the GAN owns its losses and trackers.
        """
        for reserved in ("optimizer", "loss", "metrics"):
            if reserved in kwargs:
                raise ValueError(
                    f"GAN.compile takes d_optimizer and g_optimizer, not `{reserved}`. "
                    f"Received: {reserved}={kwargs[reserved]!r}"
                )
        defaults = self.default_optimizers()
        d_optimizer = _get_optimizer(d_optimizer, defaults["discriminator"])
        g_optimizer = _get_optimizer(g_optimizer, defaults["generator"])
        if d_optimizer is g_optimizer:
            raise ValueError("d_optimizer and g_optimizer must be two different optimizer instances.")
        if self.dtype_policy.name == "mixed_float16":  # as Keras' own compile does
            d_optimizer, g_optimizer = (
                optimizer
                if isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
                else keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")
                for optimizer in (d_optimizer, g_optimizer)
            )
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.optimizers_built = True
        # After super().compile, which sets `optimizer` to None: Keras callbacks need one.
        self.optimizer = GANOptimizers(d_optimizer, g_optimizer)
        self._gan_compile_kwargs = {
            key: kwargs[key] for key in ("steps_per_execution", "jit_compile") if key in kwargs
        }

    def optimizer_roles(self):
        return {"discriminator": self.d_optimizer, "generator": self.g_optimizer}

    def get_compile_config(self):
        return {
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            **self._gan_compile_kwargs,
        }

    def compile_from_config(self, config):
        config = dict(config)
        d_optimizer = keras.saving.deserialize_keras_object(config.pop("d_optimizer"))
        g_optimizer = keras.saving.deserialize_keras_object(config.pop("g_optimizer"))
        self.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer, **config)

    # ------------------------------------------------------------------------------- noise

    @tf.autograph.experimental.do_not_convert  # Python-level branching only; seen to confuse AutoGraph
    def draw_noise(self, num_samples, seed, truncation=None):
        """Draws `[num_samples, latent_dim]` noise from the model's distribution.

        Args:
            num_samples: rows of noise.
            seed: a `SeedGenerator` (training), an int (reproducible) or None (random).
            truncation: None, or a positive threshold: Gaussian noise truncated to
                `[-truncation, truncation]` (the truncation trick; int or None seeds only).
        """
        shape = (num_samples, self.latent_dim)
        if truncation is not None:
            if self.noise != "gaussian":
                raise ValueError(f"`truncation` needs Gaussian noise; this model draws {self.noise!r} noise.")
            if not truncation > 0:
                raise ValueError(f"`truncation` must be positive or None. Received: truncation={truncation}")
            if seed is None:
                seed = int(np.random.randint(0, 2**31 - 1))
            if not isinstance(seed, (int, np.integer)):
                raise ValueError(f"`truncation` takes an int seed or None. Received: seed={seed!r}")
            return stateless_noise(self.noise, shape, tf.constant([int(seed), 0], tf.int64), float(truncation))
        if self.noise == "uniform":
            return keras.random.uniform(shape, minval=-1.0, maxval=1.0, seed=seed)
        return keras.random.normal(shape, seed=seed)

    def augment_images(self, images):
        """What D sees of `images`: the model's differentiable augmentation (`augment`,
        gan_tf.nn.augment.DiffAugment) applied per example (with ADA, each transform with
        probability p), or `images` when it is off. Every image D is shown in training, real
        or fake, in D's step and in G's, goes through it."""
        if self.augmenter is None:
            return images
        return self.augmenter(images, None if self.ada_target is None else self.augment_probability)

    def lazy_r1_penalty(self, discriminate, real_seen):
        """The R1 term of D's per-example loss (`r1_weight`): `r1_interval * r1_weight / 2 *
        ||grad D(x)||^2` on every `r1_interval`-th D step (counted by D's optimizer, so a resumed
        run regularizes on the same steps), zeros on the others and without `r1_weight`.
        `discriminate` maps the images D saw to its logits."""
        batch_size = ops.shape(real_seen)[0]
        if self.r1_weight is None:
            return ops.zeros((batch_size,))
        scale = 0.5 * self.r1_weight * self.r1_interval

        def penalty():
            return scale * losses.r1_penalty(discriminate, real_seen)

        due = ops.equal(ops.mod(self.d_optimizer.iterations, self.r1_interval), 0)
        return tf.cond(due, penalty, lambda: tf.zeros((batch_size,)))

    def top_k_count(self, global_batch_size):
        """How many fakes of a global batch of `global_batch_size` G learns from at this step
        (`top_k`): `ceil(max(top_k, top_k_decay ** (G updates // top_k_interval)) * batch)`."""
        falls = ops.cast(ops.floor_divide(self.g_optimizer.iterations, self.top_k_interval), "float32")
        share = ops.maximum(self.top_k, ops.power(self.top_k_decay, falls))
        count = ops.ceil(share * ops.cast(global_batch_size, "float32"))
        return ops.clip(ops.cast(count, "int32"), 1, global_batch_size)

    def average_generator_loss(self, g_losses):
        """G's loss for the step from its `[batch]` per-example losses: their mean over the
        global batch (`tf.nn.compute_average_loss`), or with `top_k`, the mean over the
        `top_k_count` fakes of the global batch with the smallest loss, this replica's share of
        it (the replicas' gradients sum to the global one, as with `compute_average_loss`)."""
        if self.top_k is None:
            return tf.nn.compute_average_loss(g_losses)
        global_losses = tf.distribute.get_replica_context().all_gather(ops.stop_gradient(g_losses), axis=0)
        count = self.top_k_count(ops.shape(global_losses)[0])
        kept = losses.smallest_k_mask(g_losses, global_losses, count)
        return ops.sum(kept * g_losses) / ops.cast(count, g_losses.dtype)

    def consistency_penalty(self, discriminate, real_seen, real_logits, fake_seen, fake_logits):
        """bCR's term of D's per-example loss (`consistency_weight`): `lambda * (D(T(x)) - D(x))^2`
        for the real and the generated images D saw (with their logits), T drawn per example from
        `consistency_augment`; zeros without `consistency_weight`. `discriminate` maps images to
        D's logits."""
        if self.consistency_transform is None:
            return ops.zeros((ops.shape(real_seen)[0],))
        real_moved = discriminate(self.consistency_transform(real_seen))
        fake_moved = discriminate(self.consistency_transform(fake_seen))
        return self.consistency_weight * (losses.consistency_loss(real_logits, real_moved)
                                          + losses.consistency_loss(fake_logits, fake_moved))

    def track_real_logits(self, real_logits):
        """ADA's overfitting signal: adds D's step's sign(D(real)) (one value per image, the mean
        over a patch D's outputs) to the interval's sum, over all replicas, and logs it with the
        p the step used. A no-op without `ada_target`. Every D step that sees real images calls it."""
        if self.ada_target is None:
            return
        per_image = ops.mean(ops.reshape(ops.sign(ops.cast(real_logits, "float32")), (ops.shape(real_logits)[0], -1)), axis=1)
        context = tf.distribute.get_replica_context()
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, ops.sum(per_image))
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, ops.cast(ops.shape(per_image)[0], "float32"))
        self.real_sign_sum.assign_add(total)
        self.real_sign_count.assign_add(count)
        self.real_sign_tracker.update_state(per_image)
        self.augment_probability_tracker.update_state(self.augment_probability.value)  # the p this step used

    def adapt_augment_probability(self):
        """ADA's update, every `ada_interval` D steps: p += sign(r_t - ada_target) * N / ada_images,
        clipped to [0, 1], with r_t the interval's mean sign(D(real)) and N its real images."""
        due = ops.equal(ops.mod(self.d_optimizer.iterations, self.ada_interval), 0)
        count = self.real_sign_count.value
        overfitting = self.real_sign_sum.value / ops.maximum(count, 1.0)
        step = ops.sign(overfitting - self.ada_target) * count / float(self.ada_images)
        adapted = ops.clip(self.augment_probability.value + step, 0.0, 1.0)
        self.augment_probability.assign(ops.where(due, adapted, self.augment_probability.value))
        self.real_sign_sum.assign(ops.where(due, 0.0, self.real_sign_sum.value))
        self.real_sign_count.assign(ops.where(due, 0.0, count))

    def discriminator_view(self, images, seed):
        """`images` through the model's augmentation, drawn from a stream of its own seeded by
        `seed` (the training stream is left where it is), or None when `augment` is off."""
        if self.augmenter is None:
            return None
        preview = DiffAugment(self.augment, self.value_range, keras.random.SeedGenerator(seed), self.augment_padding)
        return ops.convert_to_numpy(preview(ops.convert_to_tensor(images, "float32")))

    def sample_noise(self, batch_size):
        """This replica's slice of the global batch's noise, from the training seed stream."""
        return replica_slice(lambda global_size: self.draw_noise(global_size, self.seed_generator), batch_size)

    # ------------------------------------------------------------------------------ train

    @property
    def metrics(self):
        return [
            self.d_loss_tracker,
            self.g_loss_tracker,
            self.real_probability_tracker,
            self.fake_probability_tracker,
        ] + self.ada_trackers()

    def ada_trackers(self):
        """ADA's p and r_t trackers when `ada_target` is set (every GAN's `metrics` ends with them)."""
        return [] if self.ada_target is None else [self.augment_probability_tracker, self.real_sign_tracker]

    @staticmethod
    def unpack_images(data):
        """Real images from a batch that is `images` or `(images, labels, ...)`."""
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        real_images = self.unpack_images(data)
        batch_size = ops.shape(real_images)[0]

        for _ in range(self.d_steps):
            fake_images = self.generator(self.sample_noise(batch_size), training=True)
            real_seen, fake_seen = self.augment_images(real_images), self.augment_images(fake_images)
            with tf.GradientTape() as tape:
                real_logits = self.discriminator(real_seen, training=True)
                fake_logits = self.discriminator(fake_seen, training=True)
                d_losses = losses.minimax_discriminator_loss(real_logits, fake_logits, self.real_label)
                d_losses += self.lazy_r1_penalty(lambda x: self.discriminator(x, training=True), real_seen)
                d_losses += self.consistency_penalty(lambda x: self.discriminator(x, training=True),
                                                     real_seen, real_logits, fake_seen, fake_logits)
                d_loss = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_losses))
            d_variables = self.discriminator.trainable_variables
            d_gradients = tape.gradient(d_loss, d_variables)
            self.d_optimizer.apply(d_gradients, d_variables)
            self.track_real_logits(real_logits)

        noise = self.sample_noise(batch_size)
        with tf.GradientTape() as tape:
            logits = self.discriminator(self.augment_images(self.generator(noise, training=True)), training=True)
            g_losses = losses.minimax_generator_loss(logits)
            g_loss = self.g_optimizer.scale_loss(self.average_generator_loss(g_losses))
        g_variables = self.generator.trainable_variables
        g_gradients = tape.gradient(g_loss, g_variables)
        self.g_optimizer.apply(g_gradients, g_variables)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.real_probability_tracker.update_state(ops.sigmoid(real_logits))
        self.fake_probability_tracker.update_state(ops.sigmoid(fake_logits))
        return self.train_step_logs()

    def after_train_step(self):
        """After the step's G update (program order): one step of G's weight average, if any,
        and ADA's adjustment of p, if due."""
        if self.ema_generator is not None:
            self.update_generator_average()
        if self.ada_target is not None:
            self.adapt_augment_probability()

    def update_generator_average(self):
        """One step of the moving average of G's weights (`ema_decay`, warmed up by G's steps)."""
        ema.update_moving_average(
            self.ema_generator.weights,
            self.generator.weights,
            ema.warmed_up_decay(self.ema_decay, self.g_optimizer.iterations),
        )

    # -------------------------------------------------------------------------- inference

    @property
    def sampling_generator(self):
        """The network that samples and exports use: the moving average of G's weights when
        `ema_decay` is set (and `sample_from_average`), else the generator itself."""
        if self.ema_generator is None or not self.sample_from_average:
            return self.generator
        return self.ema_generator

    def call(self, inputs, training=False):
        """Generates images from a latent batch `z` `[batch, latent_dim]`."""
        return self.sampling_generator(inputs, training=training)

    def generate(self, num_samples, seed=None, batch_size=256, truncation=None):
        """Generates `num_samples` images in `value_range`, as a numpy array.

        Uses its own noise (from `seed`), so sampling never advances the training noise stream.

        Args:
            num_samples: how many images.
            seed: int seed for the noise (None: random).
            batch_size: images generated per forward pass.
            truncation: None, or sample z from N(0, 1) truncated to `[-truncation, truncation]`
                (trades variety for fidelity; Brock et al. 2018).

        Returns:
            `float32 [num_samples, H, W, C]`.
        """
        noise = self.draw_noise(int(num_samples), seed, truncation)
        return self._predict_in_batches([noise], batch_size)

    def _predict_in_batches(self, inputs, batch_size):
        num_samples = int(ops.shape(inputs[0])[0])
        outputs = []
        for start in range(0, num_samples, batch_size):
            chunk = [x[start : start + batch_size] for x in inputs]
            outputs.append(ops.convert_to_numpy(self(chunk[0] if len(chunk) == 1 else chunk)))
        if not outputs:
            return np.zeros((0,) + tuple(self.sampling_generator.output_shape[1:]), dtype=np.float32)
        return np.concatenate(outputs)

    # ------------------------------------------------------------------------ the contract

    def sample(self, num_samples, seed=None, conditions=None, truncation=None):
        """`Samples(images, None)`: `generate(num_samples, seed, truncation=truncation)`."""
        if conditions:
            raise ValueError(f"{type(self).__name__} is not conditional; it takes no {', '.join(conditions)}.")
        return Samples(self.generate(num_samples, seed=seed, truncation=truncation), None)

    def export_metadata(self):
        return gan_signatures.gan_metadata(self)

    def export_archive(self, metadata):
        return gan_signatures.build_export_archive(self, metadata)

    def warmup_requests(self):
        return gan_signatures.warmup_inputs(self)

    def train_step_flops_per_image(self):
        """FLOPs `GAN.train_step` spends per real image (forward and backward of both networks).

        With F_G and F_D the forward FLOPs of G and D per example, and a backward pass costing
        twice its forward pass (gradients for inputs and for weights), one step does, per image:

        * each of the `d_steps` D steps: G forward on fresh noise (F_G), D forward on a real
          and a fake image (2 F_D) and D backward on both (4 F_D);
        * the G step: G forward (F_G), D forward (F_D), D backward for its input only (F_D), G
          backward (2 F_G).

        So `d_steps * (F_G + 6 F_D) + 3 F_G + 2 F_D`; with `consistency_weight`, each D step adds
        D forward and backward on the transformed real and fake images (6 F_D more). Models
        whose step does other work (a gradient penalty, an auxiliary classifier) override this.
        """
        generator_flops = forward_flops_per_example(self.generator)
        discriminator_flops = forward_flops_per_example(self.discriminator)
        d_step_flops = generator_flops + (12 if self.consistency_weight else 6) * discriminator_flops
        return self.d_steps * d_step_flops + 3 * generator_flops + 2 * discriminator_flops

    # ------------------------------------------------------------------------------ config

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "noise": self.noise,
            "real_label": self.real_label,
            "d_steps": self.d_steps,
            "seed": self.seed,
            "ema_decay": self.ema_decay,
            "sample_from_average": self.sample_from_average,
            "augment": list(self.augment) or None,
            "augment_padding": self.augment_padding,
            "ada_target": self.ada_target,
            "ada_interval": self.ada_interval,
            "ada_images": self.ada_images,
            "r1_weight": self.r1_weight,
            "r1_interval": self.r1_interval,
            "consistency_weight": self.consistency_weight,
            "consistency_augment": list(self.consistency_augment) or None,
            "top_k": self.top_k,
            "top_k_decay": self.top_k_decay,
            "top_k_interval": self.top_k_interval,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


class ConditionalGAN(GAN):
    """Base of the class-conditional GANs: G takes `[z, labels]`, batches are `(images, labels)`.

    Subclasses build the networks and write their own `train_step`; this class holds what all
    of them share: `num_classes`, the batch unpacking with its error, `call` and `generate`.

    Args:
        generator: a built `keras.Model` from `[z, labels]` to images.
        discriminator: a built `keras.Model` (its inputs are the subclass's business).
        num_classes: number of classes; labels are ints in `[0, num_classes)`.
        latent_dim, noise, real_label, d_steps, seed, **kwargs: see `GAN`.
    """

    conditional = True
    needs_labels = True

    def __init__(self, generator, discriminator, num_classes=10, **kwargs):
        self.num_classes = check_num_classes(num_classes)
        super().__init__(generator=generator, discriminator=discriminator, **kwargs)

    def unpack_labeled_batch(self, data):
        """`(images, int32 labels)` from an `(images, labels, ...)` batch, or a clear error."""
        if not isinstance(data, (tuple, list)) or len(data) < 2:
            raise ValueError(
                f"{type(self).__name__} trains on (images, labels) batches; the dataset yields images only."
            )
        return data[0], ops.cast(data[1], "int32")

    def call(self, inputs, training=False):
        """Generates images from `[z, labels]` (`[batch, latent_dim]`, int `[batch]`)."""
        noise, labels = inputs
        return self.sampling_generator([noise, labels], training=training)

    def generate(self, num_samples=None, labels=None, seed=None, batch_size=256, truncation=None):
        """Generates images of the requested classes, as a numpy array in `value_range`.

        Args:
            num_samples: how many images; with `labels` None, classes cycle 0, 1, 2, ...
            labels: int class per image (overrides `num_samples`).
            seed: int seed for the noise (None: random).
            batch_size: images per forward pass.
            truncation: None, or a positive threshold for truncated Gaussian noise.

        Returns:
            `float32 [len(labels), H, W, C]`.
        """
        if labels is None:
            if num_samples is None:
                raise ValueError(f"{type(self).__name__}.generate needs `labels` or `num_samples`.")
            labels = np.arange(int(num_samples)) % self.num_classes
        labels = np.asarray(labels, dtype=np.int32).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must be in [0, {self.num_classes}). Received labels from "
                f"{labels.min()} to {labels.max()}"
            )
        noise = self.draw_noise(len(labels), seed, truncation)
        return self._predict_in_batches([noise, ops.convert_to_tensor(labels)], batch_size)

    def sample(self, num_samples, seed=None, conditions=None, truncation=None):
        """`Samples(images, {"labels": labels})`: images drawn for `conditions["labels"]` (one
        label for all, or one per image, cycled to `num_samples`), by default classes 0, 1, 2,
        ... in turn."""
        unknown = set(conditions or {}) - {"labels"}
        if unknown:
            raise ValueError(f"{type(self).__name__} is conditioned on labels only. Received: {sorted(unknown)}")
        labels = (conditions or {}).get("labels")
        if labels is None:
            labels = np.arange(int(num_samples)) % self.num_classes
        labels = np.asarray(labels, np.int32).reshape(-1)
        labels = np.resize(labels, int(num_samples)) if labels.size else labels
        images = self.generate(labels=labels, seed=seed, truncation=truncation)
        return Samples(images, {"labels": labels})

    def preview(self, rows, columns, seed):
        """Row k draws class k (wrapping around past the last class)."""
        labels = np.repeat(np.arange(rows) % self.num_classes, columns)
        return self.sample(rows * columns, seed=seed, conditions={"labels": labels}).images

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
