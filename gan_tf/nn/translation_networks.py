"""The networks of the image-to-image models: Pix2Pix's U-Net, CycleGAN's ResNet generator, and
the PatchGAN discriminator both use.

References:
    Isola et al. 2017 (Pix2Pix), https://arxiv.org/abs/1611.07004, appendix 6.1; Zhu et al. 2017
    (CycleGAN), https://arxiv.org/abs/1703.10593, appendix 7.2; Johnson et al. 2016 (the ResNet
    generator); reference code: junyanz/pytorch-CycleGAN-and-pix2pix, `models/networks.py`.
"""

import keras
from keras import layers, ops

from gan_tf.nn.layers import SeededDropout

# The paper's weights: N(0, 0.02) (appendix 6.2).
INITIALIZER = keras.initializers.RandomNormal(0.0, 0.02)
MAX_DEPTH = 8  # the paper's U-Net at 256x256 halves 8 times, to 1x1


def unet_depth(image_shape):
    """Halvings of the U-Net: as many as both sides allow (each stride-2 level needs even sides),
    at most 8 (256 px -> 1 px, the paper's). 32x32 -> 5, 28x28 -> 2 (7x7 at the bottleneck)."""
    height, width = image_shape[:2]
    depth = 0
    while depth < MAX_DEPTH and height % 2 == 0 and width % 2 == 0:
        height, width, depth = height // 2, width // 2, depth + 1
    if depth < 2:
        raise ValueError(f"Pix2Pix's U-Net needs image sides divisible by 4. Received: {image_shape[:2]}")
    return depth


def level_channels(width, level):
    """C64-C128-C256-C512-C512-...: `width * 2^level`, capped at `8 * width`."""
    return width * min(2**level, 8)


def unet_generator(source_shape, target_channels, width=64, dropout=0.5, dropout_blocks=3, batch_norm_momentum=0.9):
    """The U-Net: encoder levels of 4x4 stride-2 convolutions (LeakyReLU 0.2, batch norm except at
    the first and the innermost level), decoder levels of 4x4 stride-2 transposed convolutions
    (batch norm, seeded dropout in the first `dropout_blocks`, ReLU) each concatenated with the
    encoder level of its size, then a transposed convolution to `target_channels` and tanh.
    `batch_norm_momentum` is Keras's (0.9 is PyTorch's `momentum=0.1`, the reference code's).

    Inputs `[images, seeds]`: `seeds` int32 `[batch, 2]` key each example's dropout masks.
    """
    depth = unet_depth(source_shape)
    images = keras.Input(source_shape, name="images")
    seeds = keras.Input((2,), dtype="int32", name="seeds")
    x = images
    skips = []
    for level in range(depth):
        normalised = 0 < level < depth - 1
        x = layers.Conv2D(level_channels(width, level), 4, strides=2, padding="same", use_bias=not normalised,
                          kernel_initializer=INITIALIZER, name=f"down_{level}")(x)
        if normalised:
            x = layers.BatchNormalization(momentum=batch_norm_momentum, name=f"down_{level}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down_{level}_lrelu")(x)
        skips.append(x)
    for block, level in enumerate(range(depth - 2, -1, -1)):  # up to the size of encoder level `level`
        x = layers.Conv2DTranspose(level_channels(width, level), 4, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=INITIALIZER, name=f"up_{level}")(x)
        x = layers.BatchNormalization(momentum=batch_norm_momentum, name=f"up_{level}_bn")(x)
        if block < dropout_blocks and dropout > 0:
            x = SeededDropout(dropout, salt=block, name=f"up_{level}_dropout")([x, seeds])
        x = layers.ReLU(name=f"up_{level}_relu")(x)
        x = layers.Concatenate(name=f"skip_{level}")([x, skips[level]])
    x = layers.Conv2DTranspose(target_channels, 4, strides=2, padding="same", kernel_initializer=INITIALIZER,
                               name="to_image")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model([images, seeds], outputs, name="unet_generator")


def normalization(kind, name):
    """Batch norm (Pix2Pix; momentum 0.9) or instance norm (CycleGAN: `GroupNormalization` with one
    group per channel, normalising each image's channel over its pixels)."""
    if kind == "batch":
        return layers.BatchNormalization(momentum=0.9, name=name)
    if kind == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    raise ValueError(f"normalization must be 'batch' or 'instance'. Received: {kind!r}")


def patch_discriminator(image_shape, width=64, patch_layers=3, source_shape=None, norm="batch"):
    """PatchGAN: a logit per patch. Pix2Pix's sees `[input, image]` stacked on channels (give
    `source_shape`); CycleGAN's sees the image alone, with instance norm.

    C64 (no normalisation) then `patch_layers - 1` more 4x4 stride-2 levels doubling the channels,
    one 4x4 stride-1 level, and a 4x4 convolution to one logit per position: with 3 levels each
    logit sees 70x70 pixels (the papers' default). Levels are capped so the map keeps >= 2x2.
    """
    side = min(image_shape[:2])
    strided = max(1, min(patch_layers, (side // 2).bit_length() - 1))
    images = keras.Input(image_shape, name="images")
    if source_shape is not None:
        sources = keras.Input(source_shape, name="inputs")
        inputs, x = [sources, images], layers.Concatenate(name="pair")([sources, images])
    else:
        inputs, x = images, images
    for level in range(strided):
        x = layers.Conv2D(level_channels(width, level), 4, strides=2, padding="same", use_bias=level == 0,
                          kernel_initializer=INITIALIZER, name=f"patch_{level}")(x)
        if level:
            x = normalization(norm, f"patch_{level}_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"patch_{level}_lrelu")(x)
    x = layers.Conv2D(level_channels(width, strided), 4, padding="same", use_bias=False, kernel_initializer=INITIALIZER,
                      name="patch_last")(x)
    x = normalization(norm, "patch_last_norm")(x)
    x = layers.LeakyReLU(0.2, name="patch_last_lrelu")(x)
    logits = layers.Conv2D(1, 4, padding="same", kernel_initializer=INITIALIZER, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="patch_discriminator")


@keras.saving.register_keras_serializable(package="gan_tf")
class ReflectionPadding2D(layers.Layer):
    """Pads height and width by `padding` pixels, mirroring the image at its border (no zeros
    around it: CycleGAN pads this way before its 7x7 and 3x3 convolutions to avoid border artefacts)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda side: None if side is None else side + 2 * self.padding  # noqa: E731
        return (batch, grow(height), grow(width), channels)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def residual_blocks_for(image_shape):
    """CycleGAN's choice: 6 residual blocks for images of 128 px and below, 9 above."""
    return 6 if max(image_shape[:2]) <= 128 else 9


def resnet_generator(source_shape, target_channels, width=64, residual_blocks=None, name="resnet_generator"):
    """CycleGAN's generator: c7s1-w, d2w, d4w, R4w x blocks, u2w, uw, c7s1-C (appendix 7.2):
    7x7 and 3x3 convolutions after reflection padding, instance norm and ReLU, two stride-2
    downsamplings and two stride-2 transposed-convolution upsamplings, tanh out. Sides must be
    divisible by 4."""
    if source_shape[0] % 4 or source_shape[1] % 4:
        raise ValueError(f"CycleGAN's generator needs image sides divisible by 4. Received: {source_shape[:2]}")
    blocks = residual_blocks_for(source_shape) if residual_blocks is None else int(residual_blocks)
    images = keras.Input(source_shape, name="images")
    x = ReflectionPadding2D(3, name="c7_pad")(images)
    x = layers.Conv2D(width, 7, use_bias=False, kernel_initializer=INITIALIZER, name="c7")(x)
    x = layers.ReLU(name="c7_relu")(normalization("instance", "c7_norm")(x))
    for level, channels in enumerate((2 * width, 4 * width)):
        x = layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False, kernel_initializer=INITIALIZER,
                          name=f"down_{level}")(x)
        x = layers.ReLU(name=f"down_{level}_relu")(normalization("instance", f"down_{level}_norm")(x))
    for block in range(blocks):
        shortcut = x
        for half in (0, 1):
            x = ReflectionPadding2D(1, name=f"res_{block}_{half}_pad")(x)
            x = layers.Conv2D(4 * width, 3, use_bias=False, kernel_initializer=INITIALIZER, name=f"res_{block}_{half}")(x)
            x = normalization("instance", f"res_{block}_{half}_norm")(x)
            if half == 0:
                x = layers.ReLU(name=f"res_{block}_relu")(x)
        x = layers.Add(name=f"res_{block}_add")([shortcut, x])
    for level, channels in enumerate((2 * width, width)):
        x = layers.Conv2DTranspose(channels, 3, strides=2, padding="same", use_bias=False, kernel_initializer=INITIALIZER,
                                   name=f"up_{level}")(x)
        x = layers.ReLU(name=f"up_{level}_relu")(normalization("instance", f"up_{level}_norm")(x))
    x = ReflectionPadding2D(3, name="out_pad")(x)
    x = layers.Conv2D(target_channels, 7, kernel_initializer=INITIALIZER, name="out")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(images, outputs, name=name)
