"""SRGAN: super-resolution by a residual network trained on a content loss and an adversarial one.

Reference:
    Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
    Adversarial Network", https://arxiv.org/abs/1609.04802 (section 2, figure 4); sub-pixel
    upsampling: Shi et al. 2016, https://arxiv.org/abs/1609.05158
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from gan_tf.data.pairs import Examples, bicubic_downsample
from gan_tf.models.translation import Direction, TranslationModel, as_display
from gan_tf.nn import losses
from gan_tf.nn.profiling import forward_flops_per_example


@keras.saving.register_keras_serializable(package="gan_tf")
class SubPixelUpsampling(layers.Layer):
    """`tf.nn.depth_to_space`: `[B, H, W, r*r*C]` -> `[B, r*H, r*W, C]` (the sub-pixel convolution's
    shuffle: a convolution makes r*r values per pixel, then they are laid out as an r x r block)."""

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.factor)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda side: None if side is None else side * self.factor  # noqa: E731
        return (batch, grow(height), grow(width), channels // self.factor**2)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def srresnet_generator(source_shape, scale=4, width=64, residual_blocks=16):
    """SRResNet: 9x9 conv + PReLU; `residual_blocks` of (3x3 conv, BN, PReLU, 3x3 conv, BN) + skip;
    3x3 conv, BN + the long skip; log2(scale) blocks of (3x3 conv to 4x channels, sub-pixel x2,
    PReLU); 9x9 conv to the image's channels, tanh (figure 4, top)."""
    images = keras.Input(source_shape, name="low_resolution")
    x = layers.Conv2D(width, 9, padding="same", name="head")(images)
    x = head = layers.PReLU(shared_axes=[1, 2], name="head_prelu")(x)
    for block in range(residual_blocks):
        shortcut = x
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"res_{block}_a")(x)
        x = layers.BatchNormalization(name=f"res_{block}_a_bn")(x)
        x = layers.PReLU(shared_axes=[1, 2], name=f"res_{block}_prelu")(x)
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"res_{block}_b")(x)
        x = layers.BatchNormalization(name=f"res_{block}_b_bn")(x)
        x = layers.Add(name=f"res_{block}_add")([shortcut, x])
    x = layers.Conv2D(width, 3, padding="same", use_bias=False, name="trunk")(x)
    x = layers.BatchNormalization(name="trunk_bn")(x)
    x = layers.Add(name="long_skip")([head, x])
    for level in range(int(math.log2(scale))):
        x = layers.Conv2D(4 * width, 3, padding="same", name=f"up_{level}")(x)
        x = SubPixelUpsampling(2, name=f"up_{level}_shuffle")(x)
        x = layers.PReLU(shared_axes=[1, 2], name=f"up_{level}_prelu")(x)
    x = layers.Conv2D(source_shape[-1], 9, padding="same", name="tail")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(images, outputs, name="srresnet")


def srgan_discriminator(image_shape, width=64):
    """The paper's D (figure 4, bottom): 3x3 convolutions k64s1, k64s2, k128s1, k128s2, k256s1,
    k256s2, k512s1, k512s2 (LeakyReLU 0.2; batch norm after all but the first), Dense 1024,
    LeakyReLU, Dense 1 logit. Stride-2 levels stop once the map is 2x2 (small images)."""
    images = keras.Input(image_shape, name="images")
    x = images
    side = min(image_shape[:2])
    for index, (factor, stride) in enumerate([(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)]):
        if stride == 2 and side <= 2:
            stride = 1
        side = -(-side // stride)
        x = layers.Conv2D(width * factor, 3, strides=stride, padding="same", use_bias=index == 0, name=f"conv_{index}")(x)
        if index:
            x = layers.BatchNormalization(name=f"conv_{index}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"conv_{index}_lrelu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.LeakyReLU(0.2, name="dense_lrelu")(layers.Dense(16 * width, name="dense")(x))
    logits = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(images, logits, name="srgan_discriminator")


def classifier_features(classifier_model):
    """The feature network of the content loss from a data classifier (`build_classifier`): its
    input to the output of its last convolution (the deepest feature maps, as the paper's VGG54
    takes VGG19's last convolution), frozen. Images in [0, 1]."""
    convolutions = [layer for layer in classifier_model.layers if isinstance(layer, layers.Conv2D)]
    if not convolutions:
        raise ValueError("The classifier has no convolution to take content features from.")
    features = keras.Model(classifier_model.input, convolutions[-1].output, name="content_features")
    features.trainable = False
    return features


def vgg19_features(weights, image_shape):
    """VGG19 up to `block5_conv4` (VGG54) from a Keras ImageNet weights file, on images in [0, 1]
    (grey tiled to RGB, sides below 32 upsampled to 32, caffe preprocessing), frozen."""
    import os

    if not os.path.exists(weights):
        raise ValueError(f"vgg19_weights: no file at {weights} (Keras's vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5)")
    side = max(32, *image_shape[:2])
    vgg = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(side, side, 3))
    images = keras.Input(image_shape, name="images")
    x = images if image_shape[-1] == 3 else layers.Concatenate()([images] * 3)
    if tuple(image_shape[:2]) != (side, side):
        x = layers.Resizing(side, side, interpolation="bilinear")(x)
    x = layers.Lambda(lambda v: keras.applications.vgg19.preprocess_input(v * 255.0), name="vgg_preprocess")(x)
    features = keras.Model(vgg.input, vgg.get_layer("block5_conv4").output)(x)
    model = keras.Model(images, features, name="content_features")
    model.trainable = False
    return model


@keras.saving.register_keras_serializable(package="gan_tf")
class SRGAN(TranslationModel):
    """SRGAN: an SRResNet G upscales low-resolution images `scale` times; a VGG-style D judges.

    Low-resolution inputs are made from each training batch by bicubic downsampling (with
    antialiasing, then rounded to 8-bit levels), as the paper made its LR images. Training has two
    stages, switched by G's step count (so a checkpoint of either resumes where it was):

    1. for the first `pretrain_steps` steps, SRResNet: G alone on the pixel MSE;
    2. then SRGAN: one D update on `BCE(D(HR), real_label) + BCE(D(G(LR)), 0)`, and one G update on
       `content_weight * MSE(phi(G(LR)), phi(HR)) + adversarial_weight * BCE(D(G(LR)), 1)`.

    `phi` is the feature network: the dataset's own classifier (its last convolution's maps; no
    VGG weights can be downloaded here), or VGG19 up to `block5_conv4` when `vgg19_weights` names
    its Keras weights file; with neither (unlabelled data) the content loss is the pixel MSE. The
    choice is printed and kept in `feature_name`. Trackers: `d_loss`, `g_loss`, `mse`, `content`,
    `adversarial`, `pretraining` (1 while in stage 1).

    With `adversarial_weight=0` it is SRResNet throughout (no D updates).

    Args:
        image_shape: `(H, W, C)` of the high-resolution images; H and W divisible by `scale`.
        scale: 2, 4 or 8 (a power of 2: one sub-pixel x2 block each).
        width: channels of G's trunk and D's first level (64 in the paper).
        residual_blocks: G's residual blocks (16 in the paper).
        pretrain_steps: steps of stage 1; None: half of the run the trainer plans (`plan_training`),
            or 0 when never told.
        content_weight, adversarial_weight: the paper's 1 and 1e-3.
        real_label: D's target for real images (0.9: one-sided label smoothing).
        vgg19_weights: path of Keras's VGG19 (no top) ImageNet weights, or None.
        feature_network: a built feature model (images in [0, 1] -> maps), set by `from_data`
            from the data's classifier; None for pixels.
        feature_name: what the feature network is, for logs ("classifier", "vgg19", "pixels").
    """

    pairing = "images"
    default_batch_size = 16

    def __init__(self, image_shape=(28, 28, 1), scale=4, width=64, residual_blocks=16, pretrain_steps=None,
                 content_weight=1.0, adversarial_weight=1e-3, real_label=0.9, vgg19_weights=None,
                 feature_network=None, feature_name=None, seed=None, **kwargs):
        if scale not in (2, 4, 8):
            raise ValueError(f"`scale` must be 2, 4 or 8. Received: scale={scale}")
        if image_shape[0] % scale or image_shape[1] % scale:
            raise ValueError(f"SRGAN needs image sides divisible by scale={scale}. Received: {tuple(image_shape[:2])}")
        low = (image_shape[0] // scale, image_shape[1] // scale, image_shape[2])
        super().__init__(source_shape=low, image_shape=image_shape, seed=seed, **kwargs)
        for name, value in (("content_weight", content_weight), ("adversarial_weight", adversarial_weight)):
            if value < 0:
                raise ValueError(f"`{name}` must be at least 0. Received: {name}={value}")
        if pretrain_steps is not None and pretrain_steps < 0:
            raise ValueError(f"`pretrain_steps` must be at least 0 or None. Received: pretrain_steps={pretrain_steps}")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"`real_label` must be in (0, 1]. Received: real_label={real_label}")
        self.scale = int(scale)
        self.width = int(width)
        self.residual_blocks = int(residual_blocks)
        self.pretrain_steps = None if pretrain_steps is None else int(pretrain_steps)
        self.content_weight = float(content_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.real_label = float(real_label)
        self.vgg19_weights = vgg19_weights
        if vgg19_weights is not None:
            feature_network, feature_name = vgg19_features(vgg19_weights, self.image_shape), "vgg19"
        elif isinstance(feature_network, dict):
            feature_network = keras.saving.deserialize_keras_object(feature_network)
        self.feature_network = feature_network
        if feature_network is not None:
            self.feature_network.trainable = False
        self.feature_name = feature_name or ("pixels" if feature_network is None else "classifier")
        self.generator = srresnet_generator(self.source_shape, self.scale, self.width, self.residual_blocks)
        self.discriminator = srgan_discriminator(self.image_shape, self.width)
        self.trackers = {name: keras.metrics.Mean(name=name)
                         for name in ("d_loss", "g_loss", "mse", "content", "adversarial", "pretraining")}
        self.built = True

    @classmethod
    def from_data(cls, info, **model_args):
        """SRGAN for image data: the data's classifier as the feature network (unless VGG19 weights
        are given, or the data are unlabelled), the held-out images downsampled as its examples."""
        cls.check_modality(info)
        if info.source_shape is not None:
            raise ValueError("SRGAN makes its low-resolution inputs from images itself; give it image data "
                             "(fashion_mnist, folder:PATH, ...), not image-to-image data.")
        kwargs = dict(model_args)
        if kwargs.get("vgg19_weights") is None and info.classifier is not None:
            judge = info.classifier()
            if getattr(judge, "model", None) is not None and getattr(judge, "classifies_dataset", False):
                kwargs["feature_network"] = classifier_features(judge.model)
                kwargs["feature_name"] = "classifier"
        model = cls(image_shape=tuple(info.image_shape), **kwargs)
        print(f"SRGAN content loss on the features of: {model.feature_description()}.", flush=True)
        if info.examples is not None:
            targets = info.examples.targets
            model.examples = Examples(inputs=model.downsample_uint8(targets), input_labels=info.examples.target_labels,
                                      targets=targets, target_labels=info.examples.target_labels, aligned=True)
        return model

    def feature_description(self):
        return {"classifier": "the dataset's own classifier (its last convolution)",
                "vgg19": "VGG19 block5_conv4 (ImageNet weights from " + str(self.vgg19_weights) + ")",
                "pixels": "pixels (no feature network: unlabelled data and no --model_arg=vgg19_weights)"}[self.feature_name]

    def optimizer_networks(self):
        return {"discriminator": [self.discriminator], "generator": [self.generator]}

    def plan_training(self, total_steps):
        """Stage 1 takes half the run unless `pretrain_steps` says otherwise."""
        if self.pretrain_steps is None:
            self.pretrain_steps = int(total_steps) // 2

    @property
    def metrics(self):
        return list(self.trackers.values())

    # ------------------------------------------------------------------------------ images

    def downsample(self, images):
        """Bicubic downsampling by `scale` (antialiased), rounded to 8-bit levels: the LR inputs."""
        low, high = self.value_range
        small = tf.image.resize(images, self.source_shape[:2], method="bicubic", antialias=True)
        levels = tf.round((tf.clip_by_value(small, low, high) - low) / (high - low) * 255.0)
        return levels / 255.0 * (high - low) + low

    def downsample_uint8(self, images_uint8):
        """uint8 images downsampled as training does (for examples; `bicubic_downsample`)."""
        return bicubic_downsample(images_uint8, self.scale)

    def features(self, images):
        """phi(images): the feature network's maps of images in the value range (or the pixels)."""
        if self.feature_network is None:
            return images
        low, high = self.value_range
        return self.feature_network((images - low) / (high - low), training=False)

    # ------------------------------------------------------------------------------- train

    def train_step(self, data):
        high_resolution = data[0] if isinstance(data, (tuple, list)) else data
        if isinstance(high_resolution, (tuple, list)):
            raise ValueError("SRGAN trains on image batches; this dataset yields image pairs.")
        low_resolution = self.downsample(high_resolution)
        pretraining = self.generator_optimizer.iterations < (self.pretrain_steps or 0)
        adversarial_stage = tf.logical_and(tf.logical_not(pretraining), self.adversarial_weight > 0)

        with tf.GradientTape() as g_tape:
            upscaled = self.generator(low_resolution, training=True)
            with g_tape.stop_recording():
                d_losses, real_logits, fake_logits = tf.cond(
                    adversarial_stage, lambda: self.discriminator_step(high_resolution, upscaled),
                    lambda: self.no_discriminator_step(high_resolution))
            mse = losses.content_loss(upscaled, high_resolution)  # on pixels: the MSE
            content = losses.content_loss(self.features(upscaled), self.features(high_resolution))
            adversarial = losses.minimax_generator_loss(self.discriminator(upscaled, training=True))
            g_losses = tf.where(pretraining, mse, self.content_weight * content + self.adversarial_weight * adversarial)
            g_loss = tf.nn.compute_average_loss(g_losses)
        self.apply_gradients("generator", g_loss, g_tape, [self.generator])

        for name, values in (("d_loss", d_losses), ("g_loss", g_losses), ("mse", mse), ("content", content),
                             ("adversarial", adversarial)):
            self.trackers[name].update_state(values)
        self.trackers["pretraining"].update_state(tf.cast(pretraining, tf.float32))
        return self.train_step_logs()

    def discriminator_step(self, real, fakes):
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(ops.stop_gradient(fakes), training=True)
            d_losses = losses.minimax_discriminator_loss(real_logits, fake_logits, self.real_label)
            d_loss = tf.nn.compute_average_loss(d_losses)
        self.apply_gradients("discriminator", d_loss, tape, [self.discriminator])
        return d_losses, real_logits, fake_logits

    def no_discriminator_step(self, real):
        """Stage 1 (and SRResNet): D is not trained; zeros in its trackers' place."""
        zeros = tf.zeros([tf.shape(real)[0]])
        return zeros, zeros[:, tf.newaxis], zeros[:, tf.newaxis]

    # ------------------------------------------------------------------------------- serve

    def directions(self):
        return {"upscale": Direction(self.source_shape, self.image_shape,
                                     lambda images, seeds: self.generator(images, training=False), stochastic=False)}

    def preview_columns(self, inputs, targets, seed):
        """`[LR (drawn large), bicubic, SR, HR]`."""
        bicubic = tf.image.resize(inputs, self.image_shape[:2], method="bicubic").numpy()
        columns = [as_display(inputs, self.image_shape, self.value_range), np.clip(bicubic, *self.value_range),
                   self.translate(inputs)]
        return columns + ([targets] if targets is not None else [])

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def export_metadata(self):
        metadata = super().export_metadata()
        metadata["translation"]["inputs_from_targets"] = {"method": "bicubic", "scale": self.scale}
        metadata["content_features"] = self.feature_name
        return metadata

    def train_step_flops_per_image(self):
        return 3 * forward_flops_per_example(self.generator) + 8 * forward_flops_per_example(self.discriminator)

    def get_config(self):
        config = {key: value for key, value in super().get_config().items() if key != "source_shape"}
        return {**config, "scale": self.scale, "width": self.width, "residual_blocks": self.residual_blocks,
                "pretrain_steps": self.pretrain_steps, "content_weight": self.content_weight,
                "adversarial_weight": self.adversarial_weight, "real_label": self.real_label,
                "vgg19_weights": self.vgg19_weights, "feature_name": self.feature_name,
                "feature_network": None if self.feature_network is None or self.vgg19_weights is not None
                else keras.saving.serialize_keras_object(self.feature_network)}

