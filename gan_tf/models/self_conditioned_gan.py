"""The self-conditioned GAN: a CGAN whose labels are clusters of its own training images, so
it trains on unlabelled data and samples without a label.

Reference:
    Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs",
    https://arxiv.org/abs/2006.10728
"""

import logging

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_tf.models.cgan import CGAN
from gan_tf.models.gan import GAN
from gan_tf.models.generative import constructor_arguments

logger = logging.getLogger(__name__)

# Keeps a re-drawn uniform coordinate off 0 and 1, where the normal's quantile is infinite.
_EDGE = 1e-6


@keras.saving.register_keras_serializable(package="gan_tf")
class ClusterFromNoise(keras.layers.Layer):
    """`z -> (z', cluster)`: a cluster drawn from z's first coordinate, in proportion to each
    cluster's share of the training images, and z with that coordinate drawn afresh.

    The first coordinate is mapped to u ~ U[0, 1) (the normal CDF of Gaussian noise; (z + 1) / 2
    of uniform noise); the cluster is the k with `cumsum(shares)[k-1] <= u < cumsum(shares)[k]`
    (the inverse CDF of the shares), and u's position inside that interval, mapped back through
    the noise's quantile function, replaces the first coordinate. So the cluster has the
    distribution of the shares and z' is distributed as z and independent of the cluster, as
    the generator saw them in training. The shares are a non-trainable weight (saved with the
    model and exported with the generator): the exported generator stays a map from z alone.
    """

    def __init__(self, num_clusters, noise="gaussian", **kwargs):
        kwargs["dtype"] = "float32"  # the draw is exact in float32 under any mixed precision policy
        super().__init__(**kwargs)
        self.num_clusters = int(num_clusters)
        self.noise = noise
        self.shares = self.add_weight(shape=(self.num_clusters,), initializer=_first_cluster_only, trainable=False,
                                      name="cluster_shares")

    def call(self, noise):
        first = ops.cast(noise[:, 0], "float32")
        uniform = 0.5 * tf.math.erfc(-first / np.sqrt(2.0)) if self.noise == "gaussian" else (first + 1.0) / 2.0
        upper = ops.cumsum(self.shares) / ops.sum(self.shares)
        shares = self.shares / ops.sum(self.shares)
        cluster = ops.sum(ops.cast(uniform[:, None] >= upper[None, :-1], "int32"), axis=1)
        within = (uniform - ops.take(upper - shares, cluster)) / ops.take(shares, cluster)
        within = ops.clip(within, _EDGE, 1.0 - _EDGE)
        redrawn = tf.math.ndtri(within) if self.noise == "gaussian" else 2.0 * within - 1.0
        return ops.concatenate([redrawn[:, None], ops.cast(noise[:, 1:], "float32")], axis=1), cluster

    def compute_output_spec(self, noise):
        return (keras.KerasTensor(noise.shape, "float32"), keras.KerasTensor(noise.shape[:1], "int32"))

    def get_config(self):
        return {**super().get_config(), "num_clusters": self.num_clusters, "noise": self.noise}


def _first_cluster_only(shape, dtype=None):
    """Shares before clustering: every image in cluster 0 (the model is then a plain GAN)."""
    return ops.one_hot(0, shape[0], dtype=dtype or "float32")


@keras.saving.register_keras_serializable(package="gan_tf")
class SelfConditionedGAN(CGAN):
    """An unconditional GAN trained as a CGAN conditioned on k-means clusters of the data.

    Before training, `fit_clusters` clusters a draw of the training images (no label used):
    PCA of the pixels to `cluster_components` dimensions, then k-means into `num_clusters`
    (scikit-learn). The pixel mean, the PCA directions, the centroids and each cluster's share
    of the images are non-trainable weights, so checkpoints keep them and a resumed run goes on
    with the same clusters. `from_data` fits them on the data the model is trained on; a model
    built by its constructor calls `fit_clusters(images)` itself (until then every image is in
    cluster 0 and the model is a plain GAN, with a warning when training starts).

    Each train step assigns every real image to its nearest centroid (inside the step, per
    image, so replicas need no exchange) and runs `CGAN`'s step with those clusters as labels:
    fakes drawn for the batch's clusters, D judging (image, cluster) pairs. From outside the
    model is unconditional: a sample's cluster is drawn from its z (`ClusterFromNoise`, in
    proportion to the clusters' sizes), so `generate(n)`, the previews, evaluation and the
    exported generator take z alone, as DCGAN's.

    The paper clusters D's features and re-clusters as training goes; this model clusters the
    pixels once, which at the quickstart's budget already gave most of the gain. Chosen by
    measurement (docs/results/gans.md, "Conditioning on clusters of the data"): on mnist_5k at
    20 epochs (`bench/quality.py --epochs=20`, 2,000 samples, seeds 0 and 1), DCGAN's networks,
    batch and optimizers conditioned on 10 k-means clusters of 50 principal components took FID
    from DCGAN's 53.0 and 41.0 to 22.2 and 22.9, with CGAN's wrong-cluster term (a third D pass,
    +23% step time); without it, 20.8 and 22.7 at about DCGAN's step time; with 20 clusters
    and without it (the defaults), 18.4 and 17.9, precision 0.745 and 0.731 against DCGAN's
    0.527 and 0.552, recall 0.78 and 0.77 (DCGAN's 0.90 and 0.87). D reads the 20 cluster
    channels at about DCGAN's cost (`CGAN`'s `label_planes`): `python train.py` ran at 222
    ms/step against DCGAN's 216, FID 28.3 at 1,000 samples against DCGAN's 54.9.

    Args:
        image_shape: `(H, W, C)`, H and W divisible by 4.
        num_clusters: k of k-means (the paper: 100 for CIFAR-10; on digits 20 beat 10).
        cluster_components: principal components of the pixels k-means works in.
        cluster_images: how many training images `from_data` clusters (a seeded draw).
        mismatch_weight: D's wrong-cluster term (`CGAN`'s; off: it cost a third D pass for no gain).
        latent_dim, width, ema_decay, label_planes: see `CGAN`.
        dropout: after each of D's convolutions (none: DCGAN's default, which the measurement used).
        noise, real_label, d_steps, seed, **kwargs: see `GAN`.

    Example:
        >>> source = gan_tf.open_source("mnist_5k")
        >>> gan = SelfConditionedGAN.from_data(source.info, seed=0)  # fits the clusters
        >>> gan.compile()
        >>> gan.fit(source.dataset(SelfConditionedGAN.default_batch_size, seed=0), epochs=20)
        >>> images = gan.generate(16, seed=1)  # [16, 28, 28, 1] in [-1, 1], no label asked

    References:
        Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs",
        https://arxiv.org/abs/2006.10728
        Mirza & Osindero 2014, "Conditional Generative Adversarial Nets" (the CGAN it trains),
        https://arxiv.org/abs/1411.1784
    """

    conditional = False
    needs_labels = False
    default_batch_size = 32

    def __init__(
        self,
        image_shape=(28, 28, 1),
        num_clusters=20,
        cluster_components=50,
        cluster_images=5000,
        latent_dim=100,
        dropout=0.0,
        width=64,
        mismatch_weight=0.0,
        ema_decay=0.999,
        noise="gaussian",
        real_label=0.9,
        d_steps=1,
        seed=None,
        **kwargs,
    ):
        if num_clusters < 2 or cluster_components < 1 or cluster_images < num_clusters:
            raise ValueError(f"`num_clusters` must be at least 2, `cluster_components` at least 1 and `cluster_images` "
                             f"at least `num_clusters`. "
                             f"Received: cluster_components={cluster_components}, cluster_images={cluster_images}, "
                             f"num_clusters={num_clusters}")
        super().__init__(image_shape=image_shape, num_classes=num_clusters, latent_dim=latent_dim, dropout=dropout,
                         width=width, mismatch_weight=mismatch_weight, ema_decay=ema_decay, noise=noise,
                         real_label=real_label, d_steps=d_steps, seed=seed, **kwargs)
        self.cluster_components = int(cluster_components)
        self.cluster_images = int(cluster_images)
        pixels = int(np.prod(self.image_shape))

        def constant(shape, name):
            return self.add_weight(shape=shape, initializer="zeros", trainable=False, name=name)

        self.pixel_mean = constant((pixels,), "cluster_pixel_mean")
        self.projection = constant((pixels, self.cluster_components), "cluster_projection")
        self.centroids = constant((self.num_classes, self.cluster_components), "cluster_centroids")
        self.cluster_from_noise = ClusterFromNoise(self.num_classes, noise, name="cluster_from_noise")
        # z -> image samplers around G and its average (not tracked: their weights are G's, the
        # average's and `cluster_from_noise`'s, which the model saves itself).
        object.__setattr__(self, "_samplers", {
            id(network): self._unconditional_sampler(network)
            for network in (self.generator, self.ema_generator) if network is not None
        })

    @property
    def num_clusters(self):
        return self.num_classes

    def _unconditional_sampler(self, network):
        noise = keras.Input((self.latent_dim,), name="z")
        redrawn, cluster = self.cluster_from_noise(noise)
        return keras.Model(noise, network([redrawn, cluster]), name=f"{network.name}_from_z")

    def default_optimizers(self):
        """Adam(8e-4, beta_1=0.5) for both: DCGAN's defaults (`DCGAN.default_optimizers` says which
        measurement chose them), with which the clusters were measured."""
        return {
            "discriminator": keras.optimizers.Adam(8e-4, beta_1=0.5, name="d_adam"),
            "generator": keras.optimizers.Adam(8e-4, beta_1=0.5, name="g_adam"),
        }

    # ---------------------------------------------------------------------------- clusters

    @classmethod
    def from_data(cls, info, **model_args):
        """The model sized for `info`, its clusters fitted on a seeded draw of `cluster_images`
        of the training images (`info.training_images`; data that cannot give them leave the
        model unclustered, see `fit_clusters`). Data with fewer images than `num_clusters` get
        one cluster per image, with a warning: k-means cannot make more clusters than points."""
        if info.training_images is None:
            return super().from_data(info, **model_args)
        arguments = {**constructor_arguments(cls), **model_args}
        images = info.training_images(arguments["cluster_images"], model_args.get("seed") or 0)
        num_clusters = arguments["num_clusters"]
        if 2 <= len(images) < num_clusters:
            logger.warning("%s: %d training images, fewer than num_clusters=%d: using %d clusters.",
                           cls.__name__, len(images), num_clusters, len(images))
            model_args["num_clusters"] = len(images)
        model = super().from_data(info, **model_args)
        model.fit_clusters(images)
        return model

    def fit_clusters(self, images):
        """Clusters uint8 training `images` `[N, H, W, C]` (PCA, then k-means, seeded by the
        model's seed) and keeps the clusters in the model's weights; returns each image's cluster.

        Raises:
            ValueError: for images of another shape, or fewer images than clusters.
        """
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        images = np.asarray(images)
        if images.ndim != 4 or tuple(images.shape[1:]) != tuple(self.image_shape):
            raise ValueError(f"fit_clusters takes uint8 images [N, {', '.join(map(str, self.image_shape))}]. "
                             f"Received shape {images.shape}")
        if len(images) < self.num_clusters:
            raise ValueError(f"fit_clusters needs at least num_clusters={self.num_clusters} images. "
                             f"Received {len(images)}")
        pixels = self.scaled(images).reshape(len(images), -1)
        components = min(self.cluster_components, pixels.shape[1], len(pixels))
        pca = PCA(components, random_state=self.seed).fit(pixels)
        kmeans = KMeans(self.num_clusters, n_init=10, random_state=self.seed).fit(pca.transform(pixels))
        padding = ((0, 0), (0, self.cluster_components - components))
        self.pixel_mean.assign(pca.mean_.astype(np.float32))
        self.projection.assign(np.pad(pca.components_.T, padding).astype(np.float32))
        self.centroids.assign(np.pad(kmeans.cluster_centers_, padding).astype(np.float32))
        sizes = np.bincount(kmeans.labels_, minlength=self.num_clusters)
        self.cluster_from_noise.shares.assign((sizes / sizes.sum()).astype(np.float32))
        return kmeans.labels_.astype(np.int32)

    def assign_clusters(self, images):
        """The nearest centroid's index for each image `[batch, H, W, C]` in `value_range`
        (int32 `[batch]`): what k-means' `predict` gives on the images' principal components."""
        pixels = ops.reshape(ops.cast(images, "float32"), (ops.shape(images)[0], -1))
        projected = ops.matmul(pixels - self.pixel_mean, self.projection)
        distances = (ops.sum(ops.square(projected), axis=1, keepdims=True)
                     - 2.0 * ops.matmul(projected, ops.transpose(self.centroids))
                     + ops.sum(ops.square(self.centroids), axis=1)[None, :])
        return ops.cast(ops.argmin(distances, axis=1), "int32")

    @property
    def clusters_fitted(self):
        """Whether `fit_clusters` has run (k-means leaves no cluster empty)."""
        return bool(np.min(ops.convert_to_numpy(self.cluster_from_noise.shares)) > 0)

    # ------------------------------------------------------------------------------ train

    def unpack_labeled_batch(self, data):
        """`(images, their clusters)`: CGAN's step then trains on the clusters as labels."""
        real_images = self.unpack_images(data)
        return real_images, self.assign_clusters(real_images)

    def make_train_function(self, force=False):
        if not self.clusters_fitted:
            logger.warning("%s: the clusters are not fitted (call fit_clusters(images), or build the model with "
                           "from_data); every image is in cluster 0 and the model trains as a plain GAN.",
                           type(self).__name__)
        return super().make_train_function(force)

    # -------------------------------------------------------------------------- inference

    @property
    def sampling_generator(self):
        """z -> image: `ClusterFromNoise`, then the (averaged) conditional generator."""
        return self._samplers[id(super().sampling_generator)]

    def call(self, inputs, training=False):
        """Generates images from a latent batch `z` `[batch, latent_dim]` (the cluster from z)."""
        return self.sampling_generator(inputs, training=training)

    def generate(self, num_samples, seed=None, batch_size=256, truncation=None):
        """`GAN.generate`: `num_samples` images, each from the cluster its z draws."""
        return GAN.generate(self, num_samples, seed=seed, batch_size=batch_size, truncation=truncation)

    def sample(self, num_samples, seed=None, conditions=None, truncation=None):
        """`GAN.sample`: unconditional."""
        return GAN.sample(self, num_samples, seed=seed, conditions=conditions, truncation=truncation)

    def preview(self, rows, columns, seed):
        """`rows * columns` samples, as any unconditional GAN's."""
        return self.sample(rows * columns, seed=seed).images

    # ------------------------------------------------------------------------------ config

    def get_config(self):
        config = super().get_config()
        config["num_clusters"] = config.pop("num_classes")
        return {**config, "cluster_components": self.cluster_components, "cluster_images": self.cluster_images}
