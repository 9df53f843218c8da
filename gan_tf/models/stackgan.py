"""StackGAN: text to image in two stages, with conditioning augmentation.

Reference:
    Zhang, Xu, Li, Zhang, Wang, Huang & Metaxas 2017, "StackGAN: Text to Photo-realistic Image
    Synthesis with Stacked Generative Adversarial Networks", https://arxiv.org/abs/1612.03242
    (section 3; reference code hanzhanggit/StackGAN). Text embeddings: Reed et al. 2016,
    https://arxiv.org/abs/1605.05395 (here `gan_tf.nn.text`, trained as the run's first stage).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_tf.data.captions import as_embeddings
from gan_tf.grids import grouped_cells
from gan_tf.models.generative import GenerativeModel, OptimizersByRole, Samples
from gan_tf.models.multi_worker import MultiWorkerWorkarounds
from gan_tf.nn import likelihoods, losses, pyramid, text
from gan_tf.nn.layers import ConcatConditionPlanes
from gan_tf.nn.noise import replica_slice
from gan_tf.nn.profiling import forward_flops_per_example
from gan_tf.serving import stackgan_signatures

# The three stages of a run, in order (`StackGAN.stage`).
STAGES = ("text encoder", "stage I", "stage II")
# Stage lengths when the trainer never said how long the run is (`plan_training`).
DEFAULT_ENCODER_STEPS, DEFAULT_STAGE1_STEPS = 300, 1500


def augmentation_network(embedding_dim, condition_dim, name):
    """`[phi_t, eps] -> [c, mean, log_variance]`: a Dense layer with LeakyReLU gives the mean and
    log-variance of `N(mu(phi_t), Sigma(phi_t))` and `c = mean + exp(log_variance / 2) * eps`
    (the reparameterisation; `eps = 0` gives the mean: no augmentation)."""
    embedding = keras.Input((embedding_dim,), name="embedding")
    eps = keras.Input((condition_dim,), name="eps")
    x = keras.layers.LeakyReLU(0.2)(keras.layers.Dense(2 * condition_dim)(embedding))
    mean, log_variance = x[:, :condition_dim], x[:, condition_dim:]
    condition = mean + ops.exp(0.5 * log_variance) * eps
    return keras.Model([embedding, eps], [condition, mean, log_variance], name=name)


def _up_block(x, filters):
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    return keras.layers.ReLU()(x)


def stage1_generator(latent_dim, condition_dim, shape, width=64):
    """Stage-I G, `[z, c] -> low-resolution image` (half the image's sides): Dense to a
    quarter-size map of `4 width` channels, nearest-upsampling + 3x3 convolution blocks (batch
    norm, ReLU), a tanh output, as the paper's upsampling blocks."""
    noise = keras.Input((latent_dim,), name="z")
    condition = keras.Input((condition_dim,), name="condition")
    x = keras.layers.Concatenate()([noise, condition])
    x = keras.layers.Dense(shape[0] // 2 * shape[1] // 2 * 4 * width, use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = keras.layers.Reshape((shape[0] // 2, shape[1] // 2, 4 * width))(x)
    x = _up_block(x, 2 * width)
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    images = keras.layers.Conv2D(shape[-1], 3, padding="same", activation="tanh")(x)
    return keras.Model([noise, condition], images, name="stage1_generator")


def stage2_generator(condition_dim, low_shape, shape, width=64, residual_blocks=2):
    """Stage-II G, `[Stage-I image, c] -> image`: encodes the Stage-I image down to a quarter of
    the image's sides, joins `c` as planes, `residual_blocks` residual blocks, then two
    upsampling blocks to full size and a tanh output (the paper's encoder / residual / decoder)."""
    low = keras.Input(low_shape, name="stage1_images")
    condition = keras.Input((condition_dim,), name="condition")
    x = keras.layers.ReLU()(keras.layers.Conv2D(width, 3, padding="same")(low))
    x = keras.layers.Conv2D(2 * width, 4, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    x = ConcatConditionPlanes()([x, condition])
    x = keras.layers.Conv2D(2 * width, 3, padding="same", use_bias=False)(x)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(x))
    for _ in range(residual_blocks):
        y = keras.layers.Conv2D(2 * width, 3, padding="same", use_bias=False)(x)
        y = keras.layers.ReLU()(keras.layers.BatchNormalization(synchronized=True)(y))
        y = keras.layers.Conv2D(2 * width, 3, padding="same", use_bias=False)(y)
        y = keras.layers.BatchNormalization(synchronized=True)(y)
        x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
    x = _up_block(x, width)
    x = _up_block(x, max(1, width // 2))
    images = keras.layers.Conv2D(shape[-1], 3, padding="same", activation="tanh")(x)
    return keras.Model([low, condition], images, name="stage2_generator")


def matching_discriminator(shape, embedding_dim, condition_dim, width, name):
    """`[image, phi_t] -> logit`: 4x4 stride-2 convolutions (`width`, `2 width`, ...; batch norm
    after the first; LeakyReLU 0.2) down to a side of at most 4, the embedding compressed to
    `condition_dim` and joined as planes, a 1x1 convolution and one logit: the paper's D, which
    judges an image together with its text."""
    images = keras.Input(shape, name="images")
    embedding = keras.Input((embedding_dim,), name="embedding")
    x, side, filters = images, shape[0], width
    while side > 4:
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=filters != width)(x)
        if filters != width:
            x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        side, filters = (side + 1) // 2, 2 * filters
    compressed = keras.layers.LeakyReLU(0.2)(keras.layers.Dense(condition_dim)(embedding))
    x = ConcatConditionPlanes()([x, compressed])
    x = keras.layers.LeakyReLU(0.2)(keras.layers.Conv2D(filters // 2, 1)(x))
    return keras.Model([images, embedding], keras.layers.Dense(1)(keras.layers.Flatten()(x)), name=name)


def draw_noise(num_samples, latent_dim, condition_dim, seed):
    """`(z, eps_1, eps_2)` for `num_samples` images from int `seed`: `stateless_normal` keyed
    `[seed, 0]`, `[seed, 1]`, `[seed, 2]` (what the export draws for the same seed)."""
    keys = [tf.constant([int(seed), part], tf.int64) for part in range(3)]
    return (tf.random.stateless_normal([num_samples, latent_dim], keys[0]),
            tf.random.stateless_normal([num_samples, condition_dim], keys[1]),
            tf.random.stateless_normal([num_samples, condition_dim], keys[2]))


@keras.saving.register_keras_serializable(package="gan_tf")
class StackGAN(OptimizersByRole, MultiWorkerWorkarounds, GenerativeModel):
    """StackGAN on captioned images: a caption's embedding, augmented, drives a low-resolution
    Stage-I GAN, whose images a Stage-II GAN refines to full size.

    A run has three stages, switched by the model's own step count (`train_steps`, saved with
    the weights, so a checkpoint of any stage resumes in it):

    1. the text encoder (`gan_tf.nn.text`), trained with an image encoder on the symmetric matching
       loss for `encoder_steps` steps, then frozen: `phi_t` is its embedding of a caption;
    2. Stage I for `stage1_steps` steps: `c_1 ~ N(mu_1(phi_t), Sigma_1(phi_t))` (conditioning
       augmentation), `G_1(z, c_1)` makes a half-size image; the matching-aware `D_1` is trained on
       `BCE(D_1(x, phi_t), real_label) + 0.5 [BCE(D_1(G_1, phi_t), 0) + BCE(D_1(x, phi_wrong), 0)]`
       (a real image with another example's caption counts as fake, unless that caption is the same
       text), and `G_1` on `BCE(D_1(G_1, phi_t), 1) + kl_weight * KL(N(mu_1, Sigma_1) || N(0, I))`
       (the KL per dimension of `c`, as the authors' code: `kl_term`);
    3. Stage II for the rest, Stage I frozen: `G_2(G_1(z, c_1), c_2)` (its own augmentation `c_2`)
       makes the full image; `D_2` and `G_2` as in stage 2 at full size (real images for `D_1` are
       the batch's, halved by 2x2 means).

    Each step runs, within its stage: sample (noise, augmentation), the D update, the G update,
    the trackers (`match_loss`, `match_accuracy`, `d_loss`, `g_loss`, `kl`, `d_real`, `d_fake`,
    `d_wrong`, each averaged over the steps of the stage it belongs to, and `stage`: 0, 1 or 2).
    Five optimizers, each saved with the model: `encoder`, and a D and a G one per stage (Adam(2e-4,
    beta_1=0.5) for the GANs as in the paper, Adam(1e-3) for the encoders).

    Args:
        image_shape: `(H, W, C)`; H and W divisible by 4 (Stage I draws `H/2 x W/2`).
        vocabulary: the caption words (from the data: `CaptionExamples.vocabulary`).
        latent_dim: size of z (100 in the paper).
        embedding_dim: size of the text embedding `phi_t`.
        condition_dim: size of `c` (128, as the paper). Augmentation's noise carries less of
            the caption through a narrower `c`: at 16, after 4,000 steps on
            fashion_mnist_captions, 0.72 of the images showed their caption's class; at 64, 0.84;
            at 128, 0.86.
        width: channel unit of the networks.
        conditioning_augmentation: False: `c` is the mean `mu(phi_t)` with no KL term (the
            paper's ablation: less varied images for one caption).
        kl_weight: weight of the KL term in G's loss (1 in the paper).
        mismatch_weight: weight of D's wrong-caption term (0.5 in the paper's loss).
        real_label: D's target for real pairs (0.9: one-sided label smoothing, as every GAN here).
        temperature: of the text encoder's matching loss.
        encoder_steps, stage1_steps: stage lengths; None: 10% and 45% of the run the trainer plans.
        precomputed_embeddings: True: the model takes text embeddings of `embedding_dim` values
            (float32 `[N, embedding_dim]`, e.g. the StackGAN authors' char-CNN-RNN ones; data:
            `captions:PATH` with `embeddings.npy`) in place of caption strings, as they are: no
            text encoder and no encoder stage (Stage I takes the first 50% of the run).
        seed: seed of the noise stream.

    Example:

    ```python
    source = gan_tf.open_source("fashion_mnist_captions")
    model = StackGAN.from_data(source.info, seed=0)
    model.plan_training(4000)
    model.compile_optimizers(model.default_optimizers())
    model.fit(source.dataset(64, seed=0, repeat=True), epochs=1, steps_per_epoch=4000)
    images = model.generate(["a dark pullover", "a light, wide sandal"], seed=0)
    ```
    """

    default_batch_size = 64
    modality = "captioned_images"

    def __init__(self, image_shape=(28, 28, 1), vocabulary=("a",), latent_dim=100, embedding_dim=64, condition_dim=128,
                 width=64, conditioning_augmentation=True, kl_weight=1.0, mismatch_weight=0.5, real_label=0.9,
                 temperature=0.1, encoder_steps=None, stage1_steps=None, precomputed_embeddings=False, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or image_shape[0] % 4 or image_shape[1] % 4:
            raise ValueError(f"StackGAN needs (H, W, C) with H and W divisible by 4. Received: image_shape={image_shape}")
        for name, value in (("latent_dim", latent_dim), ("embedding_dim", embedding_dim),
                            ("condition_dim", condition_dim), ("width", width)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be at least 1. Received: {name}={value}")
        for name, value in (("kl_weight", kl_weight), ("mismatch_weight", mismatch_weight)):
            if value < 0:
                raise ValueError(f"`{name}` must be at least 0. Received: {name}={value}")
        for name, value in (("encoder_steps", encoder_steps), ("stage1_steps", stage1_steps)):
            if value is not None and value < 0:
                raise ValueError(f"`{name}` must be at least 0 or None. Received: {name}={value}")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"`real_label` must be in (0, 1]. Received: real_label={real_label}")
        if precomputed_embeddings and encoder_steps:
            raise ValueError("With precomputed embeddings there is no text encoder to train. "
                             f"Received: encoder_steps={encoder_steps}")
        self.precomputed_embeddings = bool(precomputed_embeddings)
        self.image_shape = image_shape
        self.stage1_shape = (image_shape[0] // 2, image_shape[1] // 2, image_shape[2])
        self.vocabulary = tuple(str(word) for word in vocabulary)
        self.latent_dim, self.embedding_dim, self.condition_dim = int(latent_dim), int(embedding_dim), int(condition_dim)
        self.width = int(width)
        self.conditioning_augmentation = bool(conditioning_augmentation)
        self.kl_weight, self.mismatch_weight = float(kl_weight), float(mismatch_weight)
        self.real_label, self.temperature = float(real_label), float(temperature)
        self.encoder_steps = 0 if self.precomputed_embeddings else None if encoder_steps is None else int(encoder_steps)
        self.stage1_steps = None if stage1_steps is None else int(stage1_steps)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.text_encoder = self.image_encoder = None
        if not self.precomputed_embeddings:
            vectorizer = text.caption_vectorizer(None, vocabulary=list(self.vocabulary))
            self.text_encoder = text.text_encoder(vectorizer, self.embedding_dim)
            self.image_encoder = text.image_encoder(image_shape, self.embedding_dim)
        self.augmentation_1 = augmentation_network(self.embedding_dim, self.condition_dim, "augmentation_1")
        self.augmentation_2 = augmentation_network(self.embedding_dim, self.condition_dim, "augmentation_2")
        self.stage1_generator = stage1_generator(self.latent_dim, self.condition_dim, self.stage1_shape, self.width)
        self.stage2_generator = stage2_generator(self.condition_dim, self.stage1_shape, image_shape, self.width)
        self.stage1_discriminator = matching_discriminator(self.stage1_shape, self.embedding_dim, self.condition_dim,
                                                           self.width, "stage1_discriminator")
        self.stage2_discriminator = matching_discriminator(image_shape, self.embedding_dim, self.condition_dim,
                                                           self.width, "stage2_discriminator")
        self.train_steps = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                           aggregation="only_first_replica", name="train_steps")
        self.examples = None
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("match_loss", "match_accuracy", "d_loss", "g_loss", "kl", "d_real", "d_fake", "d_wrong", "stage")}
        self.built = True

    @classmethod
    def from_data(cls, info, **model_args):
        """StackGAN for captioned images (`fashion_mnist_captions`, `captions:PATH`): their vocabulary
        and held-out examples, or with precomputed embeddings (`embeddings.npy`) their size;
        ValueError for data of another kind."""
        cls.check_modality(info)
        if info.examples.embeddings is not None:
            model_args = {**model_args, "precomputed_embeddings": True,
                          "embedding_dim": int(info.examples.embeddings.shape[1])}
        model = cls(image_shape=tuple(info.image_shape), vocabulary=info.examples.vocabulary, **model_args)
        model.examples = info.examples
        return model

    def optimizer_networks(self):
        encoder = {} if self.precomputed_embeddings else {"encoder": [self.text_encoder, self.image_encoder]}
        return {**encoder,
                "stage1_discriminator": [self.stage1_discriminator],
                "stage1_generator": [self.stage1_generator, self.augmentation_1],
                "stage2_discriminator": [self.stage2_discriminator],
                "stage2_generator": [self.stage2_generator, self.augmentation_2]}

    def default_optimizers(self):
        """Adam(1e-3) for the encoders; the paper's Adam(2e-4, beta_1=0.5) for every D and G."""
        return {role: keras.optimizers.Adam(1e-3, name="encoder_adam") if role == "encoder"
                else keras.optimizers.Adam(2e-4, beta_1=0.5, name=f"{role}_adam") for role in self.optimizer_networks()}

    def step_counter(self):
        return self.train_steps

    def plan_training(self, total_steps):
        """The encoder takes the first 10% of the run and Stage I the next 45%, unless set (with
        precomputed embeddings, Stage I the first 50%)."""
        if self.encoder_steps is None:
            self.encoder_steps = max(1, int(total_steps) // 10)
        if self.stage1_steps is None:
            self.stage1_steps = int(total_steps) * (50 if self.precomputed_embeddings else 45) // 100

    def stage_bounds(self):
        """`(last step of the encoder stage + 1, last step of Stage I + 1)`."""
        encoder = DEFAULT_ENCODER_STEPS if self.encoder_steps is None else self.encoder_steps
        stage1 = DEFAULT_STAGE1_STEPS if self.stage1_steps is None else self.stage1_steps
        return encoder, encoder + stage1

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ---------------------------------------------------------------------------- pieces

    def embed(self, captions):
        """`phi_t` of caption strings `[N]`: the (after stage 1 frozen) text encoder's embedding, unit
        length (the matching loss compares directions only) times `sqrt(embedding_dim)`, so its
        entries are about as large as the noise's (raw, they came out about 0.04). Precomputed
        embeddings `[N, embedding_dim]` are used as they are."""
        if self.precomputed_embeddings:
            return ops.stop_gradient(ops.cast(captions, "float32"))
        embedding = self.text_encoder(captions, training=False)
        return ops.stop_gradient(ops.normalize(embedding) * float(np.sqrt(self.embedding_dim)))

    def augment(self, augmentation, embedding, eps, training=False):
        """`(c, mean, log_variance)`; without conditioning augmentation `c` is the mean."""
        embedding, eps = ops.convert_to_tensor(embedding, "float32"), ops.convert_to_tensor(eps, "float32")
        if not self.conditioning_augmentation:
            eps = ops.zeros_like(eps)
        return augmentation([embedding, eps], training=training)

    def kl_term(self, mean, log_variance):
        """Per-example KL of the augmentation to N(0, I), per dimension of `c`: the closed form
        divided by the number of dimensions (`condition_dim`), as the authors' code takes it
        (`KL_loss`: a mean over batch and dimensions), so `kl_weight` means what it does there (0
        without augmentation). Summed over 16 dimensions instead, the term outweighed the
        caption and G drew nearly the same images for every caption (label accuracy 0.32 after
        4,000 steps, against 0.89 without augmentation)."""
        if not self.conditioning_augmentation:
            return ops.zeros_like(mean[:, 0])
        return likelihoods.gaussian_kl_divergence(mean, log_variance) / float(ops.shape(mean)[-1])

    def generate_images(self, embedding, z, eps_1, eps_2, training=False):
        """`(Stage-I images, Stage-II images)` for embeddings and noise."""
        condition_1, _, _ = self.augment(self.augmentation_1, embedding, eps_1, training)
        low = self.stage1_generator([z, condition_1], training=training)
        condition_2, _, _ = self.augment(self.augmentation_2, embedding, eps_2, training)
        return low, self.stage2_generator([low, condition_2], training=training)

    def sample_noise(self, batch_size):
        """This replica's `(z, eps_1, eps_2)` from the training noise stream."""
        size = self.latent_dim + 2 * self.condition_dim
        noise = replica_slice(lambda global_size: keras.random.normal((global_size, size), seed=self.seed_generator),
                              batch_size)
        return (noise[:, :self.latent_dim], noise[:, self.latent_dim:self.latent_dim + self.condition_dim],
                noise[:, self.latent_dim + self.condition_dim:])

    # ----------------------------------------------------------------------------- train

    def train_step(self, data):
        (images, captions), _ = data[0], data[1]
        encoder_end, stage1_end = self.stage_bounds()
        step = self.train_steps
        stage = tf.where(step < encoder_end, 0, tf.where(step < stage1_end, 1, 2))
        branches = [lambda: self.adversarial_step(images, captions, stage=1),
                    lambda: self.adversarial_step(images, captions, stage=2)]
        if self.precomputed_embeddings:  # no encoder stage: stage is 1 or 2
            values = tf.switch_case(tf.cast(stage, tf.int32) - 1, branches)
        else:
            values = tf.switch_case(tf.cast(stage, tf.int32), [lambda: self.encoder_step(images, captions)] + branches)
        matching_active = ops.cast(ops.equal(stage, 0), "float32")
        for name, value in values.items():
            weight = matching_active if name.startswith("match") else 1.0 - matching_active
            self.trackers[name].update_state(value, sample_weight=ops.full_like(value, weight))
        self.trackers["stage"].update_state(ops.cast(stage, "float32"))
        self.train_steps.assign_add(1)
        return self.train_step_logs()

    def differs(self, captions, others):
        """bool `[B]`: whether each caption (or precomputed embedding) differs from the other's."""
        if self.precomputed_embeddings:
            return ops.any(ops.not_equal(captions, others), axis=1)
        return ops.not_equal(captions, others)

    def _zeros(self, images):
        return ops.zeros_like(images[:, 0, 0, 0])

    def encoder_step(self, images, captions):
        """Stage 0: one update of both encoders on the symmetric matching loss."""
        with tf.GradientTape() as tape:
            matching, hits = text.matching_loss(self.text_encoder, self.image_encoder, images, captions,
                                                self.temperature)
            loss = tf.nn.compute_average_loss(matching)
        self.apply_gradients("encoder", loss, tape, [self.text_encoder, self.image_encoder])
        zeros = self._zeros(images)
        return {"match_loss": matching, "match_accuracy": hits, "d_loss": zeros, "g_loss": zeros, "kl": zeros,
                "d_real": zeros, "d_fake": zeros, "d_wrong": zeros}

    def adversarial_step(self, images, captions, stage):
        """Stage I (`stage=1`) or II: sample, one matching-aware D update, one G update (+ KL)."""
        batch_size = ops.shape(images)[0]
        embedding = self.embed(captions)
        wrong_embedding = ops.roll(embedding, 1, axis=0)
        wrong = ops.cast(self.differs(captions, ops.roll(captions, 1, axis=0)), "float32")
        discriminator = self.stage1_discriminator if stage == 1 else self.stage2_discriminator
        real = pyramid.downsample(images) if stage == 1 else images
        z, eps_1, eps_2 = self.sample_noise(batch_size)

        def fakes(training):
            condition_1, mean, log_variance = self.augment(self.augmentation_1, embedding, eps_1, training=stage == 1)
            low = self.stage1_generator([z, condition_1], training=training and stage == 1)
            if stage == 1:
                return low, mean, log_variance
            condition_2, mean, log_variance = self.augment(self.augmentation_2, embedding, eps_2, training=training)
            return self.stage2_generator([ops.stop_gradient(low), condition_2], training=training), mean, log_variance

        generated, _, _ = fakes(training=True)
        with tf.GradientTape() as tape:
            real_logits = discriminator([real, embedding], training=True)
            fake_logits = discriminator([ops.stop_gradient(generated), embedding], training=True)
            wrong_logits = discriminator([real, wrong_embedding], training=True)
            d_losses = losses.matching_aware_discriminator_loss(real_logits, fake_logits, wrong_logits, self.real_label,
                                                                self.mismatch_weight, wrong)
            d_loss = tf.nn.compute_average_loss(d_losses)
        self.apply_gradients(f"stage{stage}_discriminator", d_loss, tape, [discriminator])

        generator_networks = ([self.stage1_generator, self.augmentation_1] if stage == 1
                              else [self.stage2_generator, self.augmentation_2])
        with tf.GradientTape() as tape:
            generated, mean, log_variance = fakes(training=True)
            kl = self.kl_term(mean, log_variance)
            g_losses = losses.minimax_generator_loss(discriminator([generated, embedding], training=True)) + (
                self.kl_weight * kl)
            g_loss = tf.nn.compute_average_loss(g_losses)
        self.apply_gradients(f"stage{stage}_generator", g_loss, tape, generator_networks)
        zeros = self._zeros(images)
        return {"match_loss": zeros, "match_accuracy": zeros, "d_loss": d_losses, "g_loss": g_losses, "kl": kl,
                "d_real": ops.sigmoid(real_logits)[:, 0], "d_fake": ops.sigmoid(fake_logits)[:, 0],
                "d_wrong": ops.sigmoid(wrong_logits)[:, 0]}

    # -------------------------------------------------------------------------- sampling

    def call(self, inputs, training=False):
        """`[captions, z, eps_1, eps_2] -> Stage-II images`."""
        captions, z, eps_1, eps_2 = inputs
        return self.generate_images(self.embed(captions), z, eps_1, eps_2, training=training)[1]

    @tf.function(reduce_retracing=True)
    def draw(self, captions, z, eps_1, eps_2):
        """`(Stage-I, Stage-II)` images of caption strings with the given noise (a graph)."""
        return self.generate_images(self.embed(captions), z, eps_1, eps_2)

    def text_input(self, captions):
        """The model's text input as a tensor: caption strings `[N]`, or precomputed embeddings
        float32 `[N, embedding_dim]`; ValueError for empty captions or embeddings of another size."""
        if self.precomputed_embeddings:
            return tf.constant(as_embeddings(captions, self.embedding_dim))
        captions = [str(caption) for caption in np.asarray(captions, dtype=object).reshape(-1)]
        if any(not caption.strip() for caption in captions):
            raise ValueError("Captions must be non-empty text.")
        return tf.constant(captions, tf.string)

    def generate(self, captions, seed=None, stage1=False):
        """Images in [-1, 1] (numpy) for caption strings (or precomputed embeddings `[N, D]`),
        reproducibly from `seed` (random when None): the Stage-II images, or with `stage1` the
        pair `(Stage I, Stage II)`."""
        text_input = self.text_input(captions)
        seed = np.random.randint(0, 2**31 - 1) if seed is None else int(seed)
        noise = draw_noise(int(text_input.shape[0]), self.latent_dim, self.condition_dim, seed)
        low, images = (ops.convert_to_numpy(x) for x in self.draw(text_input, *noise))
        return (low, images) if stage1 else images

    @property
    def condition_key(self):
        """The `sample` condition that drives the images: "captions", or "embeddings"."""
        return "embeddings" if self.precomputed_embeddings else "captions"

    def example_conditions(self, num_samples):
        """`{"captions", "labels"}` (and `"embeddings"` when precomputed) of `num_samples` held-out
        examples (cycled): the default of `sample`."""
        if self.examples is None:
            raise ValueError(f"StackGAN.sample needs conditions={{'{self.condition_key}': [...]}} (this model has no "
                             "held-out examples; from_data gives it its data's).")
        rows = np.resize(np.arange(len(self.examples.captions)), int(num_samples))
        conditions = {"captions": np.asarray(self.examples.captions, dtype=object)[rows],
                      "labels": np.asarray(self.examples.labels)[rows]}
        if self.precomputed_embeddings:
            conditions["embeddings"] = np.asarray(self.examples.embeddings)[rows]
        if self.examples.attributes is not None:
            conditions["attributes"] = np.asarray(self.examples.attributes)[rows]
        return conditions

    def sample(self, num_samples, seed=None, conditions=None, stage=2):
        """`Samples(images, conditions)`: images for `conditions["captions"]` (one caption for all,
        or one per image, cycled; `conditions["embeddings"]` `[N, D]` with precomputed embeddings),
        by default the held-out examples' (with their labels, so label accuracy can be measured).
        `stage=1` returns Stage I's images, upsampled."""
        conditions = dict(conditions or {})
        key = self.condition_key
        unknown = set(conditions) - {"captions", "labels", "attributes", "embeddings"}
        if unknown or (not self.precomputed_embeddings and conditions.get("embeddings") is not None):
            raise ValueError(f"StackGAN is conditioned on {key}. Received: {sorted(conditions)}")
        if conditions.get(key) is None:
            conditions = {**self.example_conditions(num_samples), **{k: v for k, v in conditions.items() if v is not None}}
        if self.precomputed_embeddings:
            given = np.asarray(conditions[key], np.float32).reshape(-1, self.embedding_dim)
            conditions[key] = given[np.resize(np.arange(len(given)), int(num_samples))]
        else:
            conditions[key] = np.resize(np.asarray(conditions[key], dtype=object).reshape(-1), int(num_samples))
        low, images = self.generate(conditions[key], seed=seed, stage1=True)
        if stage == 1:
            images = np.clip(ops.convert_to_numpy(pyramid.upsample(tf.constant(low))), -1.0, 1.0)
        return Samples(images, conditions)

    def preview(self, rows, columns, seed):
        """Row k: one held-out caption of class k (or the k-th caption), drawn `columns // 2` times
        with different noise, each as its Stage-I image (enlarged) and its Stage-II image."""
        per_row = max(1, columns // 2)
        if self.examples is None:
            texts = np.zeros((rows, self.embedding_dim), np.float32) if self.precomputed_embeddings else ["a"] * rows
        else:
            labels = np.asarray(self.examples.labels)
            classes = max(1, labels.max() + 1)
            shown = [int(np.flatnonzero(labels == row % classes)[0]) if np.any(labels == row % classes)
                     else row % len(labels) for row in range(rows)]
            texts = (np.asarray(self.examples.embeddings)[shown] if self.precomputed_embeddings
                     else [self.examples.captions[i] for i in shown])
        low, images = self.generate(np.repeat(texts, per_row, axis=0), seed=seed, stage1=True)
        enlarged = np.repeat(np.repeat(low, 2, axis=1), 2, axis=2)
        return grouped_cells([enlarged, images], rows, columns, np.full(self.image_shape, -1.0, np.float32))

    # ---------------------------------------------------------------------------- export

    def export_metadata(self):
        return stackgan_signatures.stackgan_metadata(self)

    def export_archive(self, metadata):
        return stackgan_signatures.build_export_archive(self, metadata)

    def warmup_requests(self):
        return stackgan_signatures.warmup_inputs(self)

    def train_step_flops_per_image(self):
        """A Stage-II step (the longest stage, and the most costly): Stage I forward twice (F_1),
        D_2 forward and backward on three images (9 F_D) and again forward plus input gradient in
        the G step (2 F_D), G_2 forward twice and backward once (4 F_2)."""
        g1, g2 = forward_flops_per_example(self.stage1_generator), forward_flops_per_example(self.stage2_generator)
        d2 = forward_flops_per_example(self.stage2_discriminator)
        return 2 * g1 + 4 * g2 + 11 * d2

    def get_config(self):
        return {"name": self.name, "image_shape": list(self.image_shape), "vocabulary": list(self.vocabulary),
                "latent_dim": self.latent_dim, "embedding_dim": self.embedding_dim,
                "condition_dim": self.condition_dim, "width": self.width,
                "conditioning_augmentation": self.conditioning_augmentation, "kl_weight": self.kl_weight,
                "mismatch_weight": self.mismatch_weight, "real_label": self.real_label,
                "temperature": self.temperature, "encoder_steps": self.encoder_steps,
                "stage1_steps": self.stage1_steps, "precomputed_embeddings": self.precomputed_embeddings,
                "seed": self.seed}
