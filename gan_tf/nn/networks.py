"""Convolutional building blocks shared by the DCGAN family, sized by the image they make.

The generator is TensorFlow's DCGAN tutorial network, grown by resolution the way the DCGAN
paper's 64x64 network is: `Dense` to a small `base x base` map, a stride-1 transposed
convolution, then stride-2 transposed convolutions that double the map and halve the
channels, up to the image. The discriminator mirrors it with stride-2 convolutions that halve
the map and double the channels. `num_upsamplings(image_shape)` says how many doublings:

| image | base map | up-samplings | G channels (width w=64) | D channels |
| --- | --- | --- | --- | --- |
| 28x28 | 7x7 | 2 | Dense 256, 128 (s1), 64 | 64, 128 |
| 32x32 | 4x4 | 3 | Dense 512, 256 (s1), 128, 64 | 64, 128, 256 |
| 64x64 | 4x4 | 4 | Dense 512, 512 (s1), 256, 128, 64 | 64, ..., 512 |
| 128x128 | 4x4 | 5 | Dense 512, 512 (s1), 512, 256, 128, 64 | 64, ..., 512, 512 |

Channels are `w * 2^k`, capped at `8 w` (the DCGAN paper has 1024 at 4x4 for 64x64; the cap
keeps the 64 and 128 networks trainable on a CPU). At 28x28 the networks are exactly the
tutorial's (pinned by parameter counts in `tests/test_networks.py`).

Reference:
    Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep
    Convolutional Generative Adversarial Networks", https://arxiv.org/abs/1511.06434
"""

import keras

from gan_tf.nn.layers import ConditionPlanesConv2D, SpectralNormalization, spectrally_normalized

# Channels never exceed this multiple of the width unit.
MAX_WIDTH_MULTIPLIER = 8
# Self-attention goes on the largest feature map whose side is at most this (SAGAN puts it on
# mid-sized maps; attention over 64x64 positions would need a 4096 x 4096 matrix per image).
MAX_ATTENTION_SIDE = 32


def check_image_shape(image_shape):
    """Validates an `(H, W, C)` shape the DCGAN networks can produce (H, W divisible by 4)."""
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1 or image_shape[0] % 4 or image_shape[1] % 4:
        raise ValueError(
            "`image_shape` must be (height, width, channels) with height and width divisible "
            f"by 4 (at least two stride-2 upsamplings). Received: image_shape={image_shape}"
        )
    return image_shape


def check_dropout(dropout):
    """Validates a dropout rate in [0, 1) and returns it as a float."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    return float(dropout)


def check_width(width):
    """Validates the channel unit `width` (a positive int)."""
    if int(width) != width or width < 1:
        raise ValueError(f"`width` must be a positive integer. Received: width={width}")
    return int(width)


def _halvings(side):
    count = 0
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        count += 1
    return count


def num_upsamplings(image_shape):
    """Stride-2 up-samplings from the base map to `(H, W)`: H and W are halved together while
    both stay even and at least 4, and at least twice (28 -> 7: 2; 32 -> 4: 3; 64: 4)."""
    height, width = image_shape[:2]
    return max(2, min(_halvings(height), _halvings(width)))


def base_size(image_shape):
    """`(h, w)` of the map G's Dense layer makes."""
    factor = 2 ** num_upsamplings(image_shape)
    return image_shape[0] // factor, image_shape[1] // factor


def channels(width, doublings):
    """`width * 2**doublings`, capped at `MAX_WIDTH_MULTIPLIER * width`."""
    return width * min(2**doublings, MAX_WIDTH_MULTIPLIER)


def attention_side(image_shape):
    """The side (of H) of the feature map that gets self-attention: `H / 2^k` for the smallest
    `k >= 1` with `H / 2^k <= MAX_ATTENTION_SIDE` (28 -> 14, 32 -> 16, 64 and 128 -> 32)."""
    side = image_shape[0] // 2
    while side > MAX_ATTENTION_SIDE and side % 2 == 0:
        side //= 2
    return side


def generator_layers(x, image_shape, width=64, activation=None, wrap=None, attention=None):
    """The DCGAN generator's layers on tensor `x`, from a vector to an `image_shape` image.

    Dense(base * base * c0) -> BN -> act -> ConvT(c1, 5, s1) -> BN -> act -> [ConvT(c_k, 5, s2)
    -> BN -> act] ... -> ConvT(C, 5, s2, tanh), channels `channels(width, n - k)`. The output
    layer is float32 under any mixed-precision policy.

    Args:
        x: the input vector (z, or z with a condition).
        image_shape: `(H, W, C)` of the output.
        width: channel unit: the last hidden map has `width` channels.
        activation: a layer factory (default LeakyReLU(0.2), the tutorial's).
        wrap: a function applied to each Dense/ConvT layer (e.g. spectral normalization).
        attention: a function `(x, side) -> x` called after the map of side
            `attention_side(image_shape)` (SAGAN), or None.
    """
    activation = activation or (lambda: keras.layers.LeakyReLU(0.2))
    wrapped = wrap is not None
    wrap = wrap or (lambda layer, name: layer)
    height, width_px, image_channels = image_shape
    count = num_upsamplings(image_shape)
    base_h, base_w = base_size(image_shape)
    filters = channels(width, count)
    x = wrap(keras.layers.Dense(base_h * base_w * filters, use_bias=False), "dense")(x)
    x = keras.layers.BatchNormalization(synchronized=True)(x)
    x = activation()(x)
    x = keras.layers.Reshape((base_h, base_w, filters))(x)
    side, names = base_h, set()
    for index in range(count):  # the stride-1 layer, then count - 1 doublings
        strides = 1 if index == 0 else 2
        side *= strides
        filters = channels(width, count - 1 - index)
        name = f"deconv{filters}" if f"deconv{filters}" not in names else f"deconv{filters}_{index}"
        names.add(name)
        conv = keras.layers.Conv2DTranspose(filters, 5, strides=strides, padding="same", use_bias=False)
        x = wrap(conv, name)(x)
        x = keras.layers.BatchNormalization(synchronized=True)(x)
        x = activation()(x)
        if attention is not None and side == attention_side(image_shape):
            x = attention(x, side)
            attention = None  # once
    output = keras.layers.Conv2DTranspose(
        image_channels, 5, strides=2, padding="same", activation="tanh", dtype="float32",
        name=None if wrapped else "images",
    )
    return wrap(output, "images")(x)


def discriminator_features(x, dropout=0.3, width=64, wrap=None, activation=None, attention=None, kernel_size=5,
                           condition=None):
    """The DCGAN discriminator's trunk: stride-2 convolutions down to the base map, flattened.

    Conv(width, s2) -> act -> dropout -> Conv(2 width, s2) -> ... one convolution per
    up-sampling of the matching generator, channels capped at `8 width`; no batch norm (in
    particular not on the input). `attention(x, side)` is called after the map of side
    `attention_side` (SAGAN). With a `condition` vector `[B, K]`, the first convolution reads
    it as K constant extra channels of `x` (`ConditionPlanesConv2D`).
    """
    activation = activation or (lambda: keras.layers.LeakyReLU(0.2))
    wrap = wrap or (lambda layer, name: layer)
    image_shape = tuple(x.shape[1:])
    side = image_shape[0]
    for index in range(num_upsamplings(image_shape)):
        if index == 0 and condition is not None:
            conv = ConditionPlanesConv2D(channels(width, index), kernel_size, strides=2, padding="same")
            inputs = [x, condition]
        else:
            conv = keras.layers.Conv2D(channels(width, index), kernel_size, strides=2, padding="same")
            inputs = x
        x = activation()(wrap(conv, f"conv{index}")(inputs))
        side //= 2
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
        if attention is not None and side == attention_side(image_shape):
            x = attention(x, side)
            attention = None  # once
    return keras.layers.Flatten()(x)


def discriminator_layers(x, dropout=0.3, width=64, condition=None):
    """The DCGAN discriminator: its trunk (`condition`: see there), then a Dense(1) logit
    (float32 under any policy)."""
    # The logit layer is made before the trunk, as it always was: each layer draws its initial
    # weights' seed when made, so this order keeps every seeded run's starting weights.
    return keras.layers.Dense(1, dtype="float32", name="logit")(discriminator_features(x, dropout, width,
                                                                                       condition=condition))


def dcgan_generator(latent_dim, image_shape, width=64):
    """`z [batch, latent_dim]` -> images, the DCGAN generator."""
    noise = keras.Input((latent_dim,), name="z")
    return keras.Model(noise, generator_layers(noise, image_shape, width), name="generator")


def dcgan_discriminator(image_shape, dropout=0.3, width=64, spectral_norm=False):
    """images -> one logit per image, the DCGAN discriminator; with `spectral_norm`, each
    convolution and the logit layer spectrally normalized (Miyato et al. 2018)."""
    images = keras.Input(image_shape, name="images")
    if not spectral_norm:
        return keras.Model(images, discriminator_layers(images, dropout, width), name="discriminator")
    features = discriminator_features(images, dropout, width, wrap=spectrally_normalized)
    logit = SpectralNormalization(keras.layers.Dense(1, dtype="float32"), dtype="float32", name="logit")(features)
    return keras.Model(images, logit, name="discriminator")
