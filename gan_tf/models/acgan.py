"""AC-GAN: a class-conditional generator against a discriminator that also classifies.

Reference:
    Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs",
    https://arxiv.org/abs/1610.09585
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.cgan import cgan_generator
from gan_tf.models.gan import ConditionalGAN, check_num_classes
from gan_tf.nn import losses
from gan_tf.nn.networks import check_dropout, check_image_shape, check_width, discriminator_features


def acgan_discriminator(image_shape, num_classes, dropout=0.3, width=64):
    """DCGAN's discriminator trunk on the image alone, with two heads: `[source, class_logits]`.

    `source` `[batch, 1]` is the real-vs-fake logit, `class_logits` `[batch, num_classes]` the
    auxiliary classifier's; both float32 under any mixed policy.
    """
    images = keras.Input(image_shape, name="images")
    features = discriminator_features(images, dropout, width)
    source = keras.layers.Dense(1, dtype="float32", name="source")(features)
    class_logits = keras.layers.Dense(num_classes, dtype="float32", name="class_logits")(features)
    return keras.Model(images, [source, class_logits], name="discriminator")


@keras.saving.register_keras_serializable(package="gan_tf")
class ACGAN(ConditionalGAN):
    """AC-GAN: G(z, y) as in CGAN; D sees only the image and predicts both its source and class.

    D minimises the source loss (with one-sided label smoothing) plus `aux_weight` times the
    class cross-entropy on real and on generated images; G minimises the non-saturating source
    loss plus `aux_weight` times the class cross-entropy of its own images, so it is pushed to
    make images D recognises as the requested class. Fake images are drawn for the batch's own
    labels. Trackers: `d_loss`, `g_loss`, `d_real`, `d_fake` (D's mean probabilities),
    `aux_loss` (the class cross-entropy on real images) and `aux_accuracy` (D's accuracy on them).

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        num_classes: number of classes.
        latent_dim: size of z.
        dropout: dropout after each of D's convolutions.
        width: channel unit of both networks (see `DCGAN`).
        aux_weight: weight of the class loss in both networks' losses (1 in the paper).
        noise, real_label, d_steps, seed, **kwargs: see `GAN`.

    Example:
        >>> gan = ACGAN(image_shape=(28, 28, 1), num_classes=10, seed=0)
        >>> gan.compile()
        >>> gan.fit(load_dataset("mnist_5k", 64), epochs=20)
        >>> sevens = gan.generate(labels=[7] * 8, seed=0)

    Reference:
        Odena et al. 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs",
        https://arxiv.org/abs/1610.09585
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_classes=10,
        latent_dim=100,
        dropout=0.3,
        width=64,
        aux_weight=1.0,
        noise="gaussian",
        real_label=0.9,
        d_steps=1,
        seed=None,
        **kwargs,
    ):
        if not aux_weight > 0:
            raise ValueError(f"`aux_weight` must be positive. Received: aux_weight={aux_weight}")
        self.image_shape = check_image_shape(image_shape)
        self.dropout = check_dropout(dropout)
        self.width = check_width(width)
        self.aux_weight = float(aux_weight)
        num_classes = check_num_classes(num_classes)
        super().__init__(
            generator=cgan_generator(latent_dim, self.image_shape, num_classes, self.width),
            discriminator=acgan_discriminator(self.image_shape, num_classes, dropout, self.width),
            num_classes=num_classes,
            latent_dim=latent_dim,
            noise=noise,
            real_label=real_label,
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )
        self.aux_loss_tracker = keras.metrics.Mean(name="aux_loss")
        self.aux_accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="aux_accuracy")

    @property
    def metrics(self):
        return super().metrics + [self.aux_loss_tracker, self.aux_accuracy_tracker]

    def train_step(self, data):
        real_images, labels = self.unpack_labeled_batch(data)
        batch_size = ops.shape(real_images)[0]

        for _ in range(self.d_steps):
            fake_images = self.generator([self.sample_noise(batch_size), labels], training=True)
            real_seen, fake_seen = self.augment_images(real_images), self.augment_images(fake_images)
            with tf.GradientTape() as tape:
                real_logits, real_class_logits = self.discriminator(real_seen, training=True)
                fake_logits, fake_class_logits = self.discriminator(fake_seen, training=True)
                real_class_losses = losses.auxiliary_classifier_loss(real_class_logits, labels)
                fake_class_losses = losses.auxiliary_classifier_loss(fake_class_logits, labels)
                d_losses = losses.minimax_discriminator_loss(real_logits, fake_logits, self.real_label) + (
                    self.aux_weight * (real_class_losses + fake_class_losses)
                )
                d_losses += self.lazy_r1_penalty(lambda x: self.discriminator(x, training=True)[0], real_seen)
                d_losses += self.consistency_penalty(lambda x: self.discriminator(x, training=True)[0],
                                                     real_seen, real_logits, fake_seen, fake_logits)
                d_loss = self.d_optimizer.scale_loss(tf.nn.compute_average_loss(d_losses))
            d_variables = self.discriminator.trainable_variables
            self.d_optimizer.apply(tape.gradient(d_loss, d_variables), d_variables)
            self.track_real_logits(real_logits)

        noise = self.sample_noise(batch_size)
        with tf.GradientTape() as tape:
            fake_images = self.augment_images(self.generator([noise, labels], training=True))
            logits, class_logits = self.discriminator(fake_images, training=True)
            g_losses = losses.minimax_generator_loss(logits) + self.aux_weight * losses.auxiliary_classifier_loss(
                class_logits, labels
            )
            g_loss = self.g_optimizer.scale_loss(self.average_generator_loss(g_losses))
        g_variables = self.generator.trainable_variables
        self.g_optimizer.apply(tape.gradient(g_loss, g_variables), g_variables)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.real_probability_tracker.update_state(ops.sigmoid(real_logits))
        self.fake_probability_tracker.update_state(ops.sigmoid(fake_logits))
        self.aux_loss_tracker.update_state(real_class_losses)
        self.aux_accuracy_tracker.update_state(labels, real_class_logits)
        return self.train_step_logs()

    def get_config(self):
        config = super().get_config()
        del config["generator"], config["discriminator"]
        return {**config, "image_shape": self.image_shape, "dropout": self.dropout, "width": self.width, "aux_weight": self.aux_weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
