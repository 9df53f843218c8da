"""VAE and CVAE: variational autoencoders on the DCGAN networks, with an exact 8-bit likelihood.

The baseline the GAN material contrasts GANs with ("VAEs give blurrier samples"), built so the
claim can be measured with the same tools: the encoder is the DCGAN discriminator's trunk, the
decoder the DCGAN generator (both grown with the image size, `gan_tf.nn.networks`), and the pixel
likelihood is a discretised logistic over the 256 levels of 8-bit data, so the ELBO and the
importance-weighted bound are bounds on a true log-probability, in bits per dimension comparable
with any other model of 8-bit images.

References:
    Kingma & Welling 2013, "Auto-Encoding Variational Bayes", https://arxiv.org/abs/1312.6114;
    Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep Conditional
    Generative Models" (CVAE); Higgins et al. 2017, "beta-VAE"; Burda, Grosse & Salakhutdinov
    2015, "Importance Weighted Autoencoders", https://arxiv.org/abs/1509.00519; Salimans et al.
    2017, "PixelCNN++", https://arxiv.org/abs/1701.05517 (the discretised logistic).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_tf.models.gan import check_num_classes
from gan_tf.models.generative import Samples
from gan_tf.models.likelihood_model import LikelihoodModel
from gan_tf.nn import likelihoods
from gan_tf.nn.networks import check_image_shape, check_width, discriminator_features, generator_layers
from gan_tf.nn.noise import replica_slice
from gan_tf.nn.profiling import forward_flops_per_example
from gan_tf.serving import vae_signatures


# The pixel log-scale's starting value.
INITIAL_LOG_SCALE = -2.0
# `ClassPrior` keeps its table divided by this, so that Adam's steps (each about the learning
# rate in size, whatever the gradient's scale) move the prior this many times faster than a
# weight: at 1e-3, an unscaled class mean moves at most 0.8 in 780 steps, where the classes'
# posteriors lie units apart. Chosen by measurement (bench/cvae_labels.py; docs/results/
# likelihood.md, "Conditional likelihood models: where the class goes"): label accuracy
# after 10 epochs 0.29, 0.53, 0.71 and 0.76 at scales 1, 10, 30 and 100.
CLASS_PRIOR_STEP_SCALE = 100.0


def _label_inputs(num_classes):
    labels = keras.Input((), dtype="int32", name="labels")
    return labels, keras.layers.CategoryEncoding(num_classes, output_mode="one_hot", name="one_hot")(labels)


def vae_encoder(image_shape, latent_dim, width=64, num_classes=None):
    """images (and labels) -> `[batch, 2 * latent_dim]`: the posterior's mean, then its log-variance.

    The DCGAN discriminator's trunk without dropout; a CVAE's labels enter as one-hot constant
    channels, as in CGAN's discriminator.
    """
    images = keras.Input(image_shape, name="images")
    inputs, x = images, images
    if num_classes:
        labels, one_hot = _label_inputs(num_classes)
        maps = keras.layers.UpSampling2D(image_shape[:2], name="label_maps")(keras.layers.Reshape((1, 1, num_classes))(one_hot))
        inputs, x = [images, labels], keras.layers.Concatenate()([images, maps])
    features = discriminator_features(x, dropout=0.0, width=width)
    posterior = keras.layers.Dense(2 * latent_dim, dtype="float32", name="posterior")(features)
    return keras.Model(inputs, posterior, name="encoder")


def vae_decoder(latent_dim, image_shape, width=64, num_classes=None):
    """z (and labels) -> the mean image in [-1, 1]: the DCGAN generator (a CVAE's with the
    one-hot label beside z, as CGAN's generator)."""
    z = keras.Input((latent_dim,), name="z")
    inputs, x = z, z
    if num_classes:
        labels, one_hot = _label_inputs(num_classes)
        inputs, x = [z, labels], keras.layers.Concatenate()([z, one_hot])
    return keras.Model(inputs, generator_layers(x, image_shape, width), name="decoder")


@keras.saving.register_keras_serializable(package="gan_tf")
@keras.saving.register_keras_serializable(package="gan_tf")
class ClassPrior(keras.layers.Layer):
    """A learned Gaussian prior per class, `p(z|y) = N(mean_y, diag(exp(log_variance_y)))`,
    as the CVAE paper's prior network `p(z|x)` for a condition that is a class.

    The model works in the standardized latent `u = (z - mean_y) / std_y`, whose prior is
    N(0, I): `call([u, labels])` gives `z` (what the decoder reads), and `standardize` maps a
    posterior over `z` to the posterior over `u`. KL divergences and importance weights are the
    same in either variable (both sides of each ratio change by the same Jacobian), so the ELBO,
    the importance-weighted bound, sampling and the exported signatures keep N(0, I). Starts
    at N(0, I) (zeros), the unconditional prior; the table holds the statistics divided by
    `CLASS_PRIOR_STEP_SCALE`, so that the prior learns faster than the networks.
    """

    def __init__(self, num_classes, latent_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.latent_dim = int(num_classes), int(latent_dim)
        self.statistics = keras.layers.Embedding(self.num_classes, 2 * self.latent_dim, embeddings_initializer="zeros",
                                                 name="statistics")

    def build(self, input_shape):
        self.statistics.build((None,))
        self.built = True

    def mean_and_log_variance(self, labels):
        statistics = CLASS_PRIOR_STEP_SCALE * self.statistics(ops.cast(labels, "int32"))
        return statistics[:, : self.latent_dim], statistics[:, self.latent_dim :]

    def call(self, inputs):
        standardized, labels = inputs
        mean, log_variance = self.mean_and_log_variance(labels)
        return mean + ops.exp(0.5 * log_variance) * standardized

    def standardize(self, mean, log_variance, labels):
        """`(mean, log_variance)` of `q(u|x, y)` from those of `q(z|x, y)`."""
        prior_mean, prior_log_variance = self.mean_and_log_variance(labels)
        return (mean - prior_mean) * ops.exp(-0.5 * prior_log_variance), log_variance - prior_log_variance

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "latent_dim": self.latent_dim}


class VAE(LikelihoodModel):
    """A variational autoencoder trained by `fit` with one optimizer (`beta`-weighted ELBO).

    Per batch, `train_step` draws `eps ~ N(0, I)` (each replica its slice of the global batch's,
    as the GANs draw noise), encodes the images into `q(z|x) = N(mu, diag(sigma^2))`, decodes
    `z = mu + sigma * eps`, and takes one step on `-log p(x|z) + beta * KL(q(z|x) || N(0, I))`,
    where `p(x|z)` is a discretised logistic per pixel (mean: the decoder's output; scale: a
    learned log-scale per pixel and channel, shared by all images). Trackers: `loss` (that
    objective), `reconstruction` (`-log p(x|z)`, nats), `kl` (nats) and `bits_per_dim` (the
    negative ELBO at beta 1, in bits per dimension, an upper bound on the model's).

    Samples are the decoder's mean image for `z ~ N(0, I)` (the pixel noise of the logistic is
    not drawn: it would add grain, not detail). `log_likelihood` gives each image's ELBO and
    its importance-weighted bound with `importance_samples` samples.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        latent_dim: size of z.
        width: channel unit of both networks (as the DCGAN's).
        beta: weight of the KL term (1: the ELBO; above 1: a beta-VAE).
        importance_samples: k of the importance-weighted bound (100 as in Burda et al.).
        num_classes: None for a VAE; the number of classes for a CVAE (`CVAE` sets it).
        class_prior: with `num_classes`, whether the prior is learned per class
            (`ClassPrior`, `p(z|y)`) instead of N(0, I) for every class.
        temperature: samples decode `z = temperature * u`, `u ~ N(0, I)` (in the standardized
            latent: with `class_prior`, the class's mean plus `temperature` times its spread),
            in `sample` and the export's `sample` signatures; below 1, samples come from nearer
            the prior's centre (Kingma & Dhariwal 2018, Glow's reduced-temperature sampling):
            more typical, less varied. Training and the likelihood bounds do not use it. Can be
            changed after training (`model.temperature = t`). 1: the prior itself.
        seed: seed of the posterior-noise stream.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
        >>> vae = VAE(image_shape=(28, 28, 1), seed=0)
        >>> vae.compile_optimizers(vae.default_optimizers())
        >>> vae.fit(load_dataset("mnist_5k", 64, value_range=VAE.value_range), epochs=20)
        >>> bounds = vae.log_likelihood(test_images)  # {"elbo": ..., "log_likelihood": ...}

    References:
        Kingma & Welling 2013, https://arxiv.org/abs/1312.6114; Burda et al. 2015,
        https://arxiv.org/abs/1509.00519
    """

    # The prior, as the GANs' exported signatures draw it (`gan_tf.nn.noise.stateless_noise`).
    noise = "gaussian"
    exports_truncation = False

    def __init__(self, image_shape=(28, 28, 1), latent_dim=32, width=64, beta=1.0, importance_samples=100,
                 num_classes=None, class_prior=False, temperature=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = check_image_shape(image_shape)
        if int(latent_dim) != latent_dim or latent_dim < 1:
            raise ValueError(f"`latent_dim` must be a positive integer. Received: latent_dim={latent_dim}")
        if not beta > 0:
            raise ValueError(f"`beta` must be positive. Received: beta={beta}")
        if int(importance_samples) != importance_samples or importance_samples < 1:
            raise ValueError(f"`importance_samples` must be a positive integer. Received: importance_samples={importance_samples}")
        self.latent_dim = int(latent_dim)
        self.width = check_width(width)
        self.beta = float(beta)
        self.importance_samples = int(importance_samples)
        self.num_classes = None if num_classes is None else check_num_classes(num_classes)
        if class_prior and not self.num_classes:
            raise ValueError("`class_prior` learns a prior per class: it needs `num_classes`.")
        self.class_prior = bool(class_prior)
        self.temperature = temperature
        self.seed = seed
        self.encoder = vae_encoder(self.image_shape, self.latent_dim, self.width, self.num_classes)
        self.decoder = vae_decoder(self.latent_dim, self.image_shape, self.width, self.num_classes)
        self.prior = ClassPrior(self.num_classes, self.latent_dim, name="class_prior") if self.class_prior else None
        # What samples come from: the decoder, reading the standardized latent through the
        # class prior when there is one.
        self.prior_decoder = self.decoder
        if self.prior is not None:
            standardized = keras.Input((self.latent_dim,), name="z")
            labels = keras.Input((), dtype="int32", name="labels")
            images = self.decoder([self.prior([standardized, labels]), labels])
            self.prior_decoder = keras.Model([standardized, labels], images, name="prior_decoder")
        # Starts at s = e^-2 = 0.14 (on [-1, 1] data): Adam moves it ~1e-3 a step, so a start at
        # s = 1 would take thousands of steps to reach the scales of a decent fit.
        self.log_scale = self.add_weight(shape=self.image_shape, initializer=keras.initializers.Constant(INITIAL_LOG_SCALE),
                                         name="log_scale")
        self.seed_generator = keras.random.SeedGenerator(seed, name="posterior_seed")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.bits_tracker = keras.metrics.Mean(name="bits_per_dim")
        self.built = True

    @property
    def temperature(self):
        """The spread of the prior that samples are drawn from, relative to the prior's own."""
        return self._temperature

    @temperature.setter
    def temperature(self, value):
        if not value > 0:
            raise ValueError(f"`temperature` must be > 0. Received: temperature={value}")
        self._temperature = float(value)

    # ------------------------------------------------------------------------------- train

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker, self.bits_tracker]

    def _condition(self, inputs, labels):
        inputs = ops.convert_to_tensor(inputs, "float32")
        return [inputs, ops.convert_to_tensor(labels, "int32")] if self.num_classes else inputs

    def posterior(self, images, labels=None, training=False):
        """`(mean, log_variance)` of `q(z|x)`, each `[batch, latent_dim]` (with `class_prior`,
        of the standardized latent, whose prior is N(0, I))."""
        statistics = self.encoder(self._condition(images, labels), training=training)
        mean, log_variance = statistics[:, : self.latent_dim], statistics[:, self.latent_dim :]
        if self.prior is not None:
            return self.prior.standardize(mean, log_variance, labels)
        return mean, log_variance

    def decode(self, z, labels=None, training=False):
        """The mean image of `p(x|z)`, in `value_range` (`z` as `posterior` gives it)."""
        return self.prior_decoder(self._condition(z, labels), training=training)

    def reconstruction_log_likelihood(self, images, decoded):
        """`log p(x|z)` per image, in nats (`likelihoods.discretized_logistic_log_likelihood`)."""
        return likelihoods.discretized_logistic_log_likelihood(images, decoded, self.log_scale, self.value_range)

    def train_step(self, data):
        images, labels = self.unpack(data)
        batch_size = ops.shape(images)[0]
        eps = replica_slice(lambda size: keras.random.normal((size, self.latent_dim), seed=self.seed_generator), batch_size)

        with tf.GradientTape() as tape:
            mean, log_variance = self.posterior(images, labels, training=True)
            z = mean + ops.exp(0.5 * log_variance) * eps
            reconstruction = -self.reconstruction_log_likelihood(images, self.decode(z, labels, training=True))
            kl = likelihoods.gaussian_kl_divergence(mean, log_variance)
            losses = reconstruction + self.beta * kl
            loss = self.optimizer.scale_loss(tf.nn.compute_average_loss(losses))
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)

        self.loss_tracker.update_state(losses)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        self.bits_tracker.update_state(likelihoods.bits_per_dim(-(reconstruction + kl), self.dimensions))
        return self.train_step_logs()

    # -------------------------------------------------------------------------- likelihood

    def log_likelihood_bounds(self, images, labels, eps):
        """`(elbo, iwae)` per image, nats, from `eps` `[batch, k, latent_dim]` standard normal draws.

        The ELBO is `E_q[log p(x|z)] - KL` with the KL in closed form and the expectation over
        the k draws; the importance-weighted bound is `log mean_i p(x|z_i) p(z_i) / q(z_i|x)`.
        """
        mean, log_variance = self.posterior(images, labels)
        batch, k = ops.shape(eps)[0], ops.shape(eps)[1]
        z = mean[:, None, :] + ops.exp(0.5 * log_variance)[:, None, :] * eps  # [batch, k, latent]
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        flat_labels = None if labels is None else ops.repeat(labels, k, axis=0)
        decoded = self.decode(flat_z, flat_labels)
        flat_images = ops.repeat(images, k, axis=0)
        log_px = ops.reshape(self.reconstruction_log_likelihood(flat_images, decoded), (batch, k))
        log_pz = likelihoods.gaussian_log_density(z)
        log_qz = likelihoods.gaussian_log_density(z, mean[:, None, :], log_variance[:, None, :])
        elbo = ops.mean(log_px, axis=1) - likelihoods.gaussian_kl_divergence(mean, log_variance)
        return elbo, likelihoods.importance_weighted_bound(log_px + log_pz - log_qz)

    def log_likelihood(self, images, conditions=None, seed=0, batch_size=64):
        """Each image's log-likelihood bounds: `{"elbo", "log_likelihood"}` in nats (the latter
        the importance-weighted bound with `importance_samples` samples, the tighter one), and
        `"bits_per_dim"` from it. `images` are uint8 `[N, H, W, C]` (0..255)."""
        labels = self.labels_for(len(images), conditions)
        scaled = self.scaled(images)
        elbo, iwae = [], []
        for start in range(0, len(images), batch_size):
            chunk = scaled[start : start + batch_size]
            eps = keras.random.normal((len(chunk), self.importance_samples, self.latent_dim), seed=seed + start)
            chunk_labels = None if labels is None else ops.convert_to_tensor(labels[start : start + batch_size])
            bounds = self.log_likelihood_bounds(ops.convert_to_tensor(chunk), chunk_labels, eps)
            elbo.append(ops.convert_to_numpy(bounds[0]))
            iwae.append(ops.convert_to_numpy(bounds[1]))
        iwae = np.concatenate(iwae) if iwae else np.zeros([0], np.float32)
        return {"elbo": np.concatenate(elbo) if elbo else iwae, "log_likelihood": iwae,
                "bits_per_dim": np.asarray(likelihoods.bits_per_dim(iwae, self.dimensions))}

    # ------------------------------------------------------------------------ the contract

    @property
    def sampling_generator(self):
        """The network that maps the prior's z (and labels) to images: the decoder (after
        the class prior, with `class_prior`)."""
        return self.prior_decoder

    def call(self, inputs, training=False):
        """Decodes `z` (a CVAE: `[z, labels]`) into mean images."""
        return self.prior_decoder(inputs, training=training)

    def sample(self, num_samples, seed=None, conditions=None):
        """`Samples(mean images for z = temperature * u, u ~ N(0, I), {"labels": ...} or None)`;
        classes 0, 1, 2, ... in turn for a CVAE unless `conditions["labels"]` says otherwise."""
        labels = self.labels_for(int(num_samples), conditions)
        z = self.temperature * keras.random.normal((int(num_samples), self.latent_dim), seed=seed)
        images = []
        for start in range(0, int(num_samples), 256):
            chunk_labels = None if labels is None else ops.convert_to_tensor(labels[start : start + 256])
            images.append(ops.convert_to_numpy(self.decode(z[start : start + 256], chunk_labels)))
        images = np.concatenate(images) if images else np.zeros((0,) + self.image_shape, np.float32)
        return Samples(images, None if labels is None else {"labels": labels})

    def export_metadata(self):
        return vae_signatures.vae_metadata(self)

    def export_archive(self, metadata):
        return vae_signatures.build_export_archive(self, metadata)

    def warmup_requests(self):
        return vae_signatures.warmup_inputs(self)

    def train_step_flops_per_image(self):
        """Encoder forward + backward (3 F_E) and decoder forward + backward (3 F_D)."""
        return 3 * forward_flops_per_example(self.encoder) + 3 * forward_flops_per_example(self.decoder)

    def get_config(self):
        return {"name": self.name, "image_shape": self.image_shape, "latent_dim": self.latent_dim,
                "width": self.width, "beta": self.beta, "importance_samples": self.importance_samples,
                "num_classes": self.num_classes, "class_prior": self.class_prior, "temperature": self.temperature,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="gan_tf")
class CVAE(VAE):
    """The class-conditional VAE: the label enters the encoder (as constant one-hot channels) and
    the decoder (beside z), so `q(z|x, y)` and `p(x|z, y)`, and the prior is learned per class,
    `p(z|y)` (`ClassPrior`, Sohn et al.'s prior network for a class); samples are drawn for
    chosen classes.

    Why the class prior: with N(0, I) for every class, z carries the class (it costs at most
    log 10 nats of KL) and the decoder learns to read it from z, not from the label. Encoding a
    real digit and decoding it with another label gave back the digit's own class 98% of the
    time after 10 epochs on mnist_5k, and samples showed the asked class 26% of the time. With
    the class prior, the class's region of z is where its samples are drawn from, whichever
    input the decoder reads it from: 76% after the same 10 epochs, bits/dim no worse
    (bench/cvae_labels.py; docs/results/likelihood.md, "Conditional likelihood models: where the class goes").
    Samples are drawn nearer each class's centre (`temperature=0.7`), where codes decode to
    clear digits of the class: 91% (77% from the prior itself), at the cost of diversity.

    Args:
        num_classes: number of classes (from the data by `from_data`).
        class_prior: learn the prior per class (False: N(0, I) for every class).
        temperature: the prior's spread that samples are drawn with (`VAE`). 0.7: label
            accuracy 0.910 against 0.771 at 1, FID 79.9 against 97.5, recall 0.457 against
            0.702, after 10 epochs on mnist_5k (bench/cvae_labels.py --temperatures; 0.6 and 0.5
            obey more, 0.942 and 0.961, but lose more recall and FID rises again).
        **kwargs: see `VAE`.

    Reference:
        Sohn, Lee & Yan 2015, "Learning Structured Output Representation using Deep Conditional
        Generative Models", NeurIPS.
    """

    conditional = True
    needs_labels = True
    # Saved before the class prior existed: N(0, I); before the temperature: the prior itself.
    older_config_defaults = {"class_prior": False, "temperature": 1.0}

    def __init__(self, num_classes=10, class_prior=True, temperature=0.7, **kwargs):
        super().__init__(num_classes=num_classes, class_prior=class_prior, temperature=temperature, **kwargs)

    @classmethod
    def from_config(cls, config):
        return cls(**{**cls.older_config_defaults, **config})

