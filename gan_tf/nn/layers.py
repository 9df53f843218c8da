"""Keras layers the GAN variants share: spectral normalization, self-attention, conditional batch
norm, the projection discriminator's class head, seeded dropout (Pix2Pix's noise), the image
pool, and a condition given to a convolution as constant planes (concatenated, or precomputed).

Each is a serializable Keras layer (`get_config` returns every constructor argument), so a
`.keras` file of any model built from them loads with `safe_mode=True`.
"""

import keras
import tensorflow as tf
from keras import ops


def _l2_normalize(x):
    return x / ops.sqrt(ops.sum(ops.square(x)) + 1e-12)


@keras.saving.register_keras_serializable(package="gan_tf")
class SpectralNormalization(keras.layers.Wrapper):
    """Runs a layer with its kernel divided by the kernel's largest singular value.

    The layer computes with `W / sigma(W)`, where `sigma(W)` is estimated by power iteration
    on `W` reshaped to `[-1, W.shape[-1]]`, with a persistent vector `u` (Miyato et al.,
    Algorithm 1). In training (`training=True`) each call runs `power_iterations` steps and
    stores the new `u`; in inference `u` is read, never written, so inference has no side
    effects. `u` carries no gradient, but `sigma` does: `d sigma / dW = v u^T`, as in the paper.

    Unlike `keras.layers.SpectralNormalization`, which assigns `W / sigma` back into the
    trainable kernel on every training call (so the optimizer updates the normalized weights
    and the gradient skips sigma's derivative), this wrapper never writes the kernel: the
    normalized kernel is substituted for the variable only inside the wrapped layer's call, via
    `keras.StatelessScope`.

    Args:
        layer: a layer with a `kernel` (Dense, Conv2D, Conv2DTranspose, ...) or `embeddings`
            (Embedding) variable.
        power_iterations: power-iteration steps per training call (1 in the paper).
        **kwargs: passed to `keras.layers.Wrapper`.

    Example:
        >>> conv = SpectralNormalization(keras.layers.Conv2D(64, 4, strides=2))
        >>> y = conv(images, training=True)

    Reference:
        Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative
        Adversarial Networks", https://arxiv.org/abs/1802.05957
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        super().__init__(layer, **kwargs)
        if power_iterations < 1:
            raise ValueError(
                f"`power_iterations` must be at least 1. Received: power_iterations={power_iterations}"
            )
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        if hasattr(self.layer, "kernel"):
            self.normalized_variable = self.layer.kernel
        elif hasattr(self.layer, "embeddings"):
            self.normalized_variable = self.layer.embeddings
        else:
            raise ValueError(f"{type(self.layer).__name__} has no `kernel` nor `embeddings` to normalize.")
        self.vector_u = self.add_weight(
            shape=(1, self.normalized_variable.shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            trainable=False,
            name="vector_u",
        )

    def spectral_norm(self, training=False):
        """Returns `(sigma, u)`: the largest singular value's estimate and the vector it used."""
        weights = ops.reshape(self.normalized_variable.value, (-1, self.normalized_variable.shape[-1]))
        vector_u = _l2_normalize(ops.cast(self.vector_u.value, weights.dtype))
        if training:
            for _ in range(self.power_iterations):
                vector_v = _l2_normalize(ops.matmul(vector_u, ops.transpose(weights)))
                vector_u = _l2_normalize(ops.matmul(vector_v, weights))
        vector_u = ops.stop_gradient(vector_u)
        # sigma = v W u^T with v = normalize(u W^T), i.e. ||W u^T||.
        sigma = ops.sqrt(ops.sum(ops.square(ops.matmul(weights, ops.transpose(vector_u)))) + 1e-12)
        return sigma, vector_u

    def call(self, inputs, training=False):
        sigma, vector_u = self.spectral_norm(training=training)
        if training:
            self.vector_u.assign(ops.cast(vector_u, self.vector_u.dtype))
        normalized = self.normalized_variable.value / ops.cast(sigma, self.normalized_variable.dtype)
        with keras.StatelessScope(state_mapping=[(self.normalized_variable, normalized)]):
            return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


def spectrally_normalized(layer, name):
    """`layer` in `SpectralNormalization`, as `gan_tf.nn.networks`' builders wrap each layer
    (`wrap=`): named `sn_<name>`, except the output layer "images", which keeps its name and
    stays float32 under any mixed policy."""
    if name == "images":
        return SpectralNormalization(layer, dtype="float32", name=name)
    return SpectralNormalization(layer, name=f"sn_{name}")


def maybe_spectral_norm(layer, spectral_norm):
    """`SpectralNormalization(layer)` if `spectral_norm`, else `layer`."""
    return SpectralNormalization(layer, name=f"sn_{layer.name}") if spectral_norm else layer


@keras.saving.register_keras_serializable(package="gan_tf")
class SelfAttention2D(keras.layers.Layer):
    """SAGAN's self-attention block: `y = gamma * o + x`, `gamma` learned and starting at 0.

    For feature maps `x` `[batch, H, W, C]` with N = H * W positions: query `g(x)` and key
    `f(x)` are 1x1 convolutions to `C / channel_divisor` channels, value `h(x)` one to the same
    size, and `v` a 1x1 convolution back to C; `beta[j, i] = softmax_i(f(x_i) . g(x_j))` is how
    much position j attends to position i, and `o_j = v(sum_i beta[j, i] h(x_i))`. With
    `gamma = 0` (its initial value) the block is the identity, so the network starts local and
    learns how much non-local evidence to use.

    Args:
        channel_divisor: C / (channels of f, g, h); 8 in the paper.
        spectral_norm: wrap the four 1x1 convolutions in `SpectralNormalization` (the paper
            normalizes every layer of G and D).
        **kwargs: passed to `keras.layers.Layer`.

    Reference:
        Zhang, Goodfellow, Metaxas & Odena 2018, "Self-Attention Generative Adversarial
        Networks", https://arxiv.org/abs/1805.08318 (section 3).
    """

    def __init__(self, channel_divisor=8, spectral_norm=True, **kwargs):
        super().__init__(**kwargs)
        if channel_divisor < 1:
            raise ValueError(f"`channel_divisor` must be at least 1. Received: channel_divisor={channel_divisor}")
        self.channel_divisor = int(channel_divisor)
        self.spectral_norm = bool(spectral_norm)

    def build(self, input_shape):
        channels = input_shape[-1]
        inner = max(1, channels // self.channel_divisor)

        def conv(filters, name):
            return maybe_spectral_norm(keras.layers.Conv2D(filters, 1, use_bias=False, name=name), self.spectral_norm)

        self.query_conv = conv(inner, "query")  # g in the paper
        self.key_conv = conv(inner, "key")  # f
        self.value_conv = conv(inner, "value")  # h
        self.output_conv = conv(channels, "output")  # v
        for layer in (self.query_conv, self.key_conv, self.value_conv):
            layer.build(input_shape)
        self.output_conv.build(tuple(input_shape[:-1]) + (inner,))
        self.gamma = self.add_weight(shape=(), initializer="zeros", name="gamma")

    def call(self, inputs, training=False):
        batch, height, width = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]

        def positions(x):  # [batch, H, W, c] -> [batch, N, c]
            return ops.reshape(x, (batch, height * width, ops.shape(x)[-1]))

        query = positions(self.query_conv(inputs, training=training))
        key = positions(self.key_conv(inputs, training=training))
        value = positions(self.value_conv(inputs, training=training))
        attention = ops.softmax(ops.matmul(query, ops.transpose(key, (0, 2, 1))), axis=-1)  # [batch, N_j, N_i]
        attended = ops.reshape(ops.matmul(attention, value), (batch, height, width, ops.shape(value)[-1]))
        return inputs + ops.cast(self.gamma, inputs.dtype) * self.output_conv(attended, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "channel_divisor": self.channel_divisor,
            "spectral_norm": self.spectral_norm,
        }


@keras.saving.register_keras_serializable(package="gan_tf")
class ConditionalBatchNormalization(keras.layers.Layer):
    """Batch norm whose scale and shift are functions of a conditioning vector.

    `y = BN(x) * (1 + c W_gain) + c W_bias` for inputs `[x, c]`: `x` `[batch, ..., C]`, `c`
    `[batch, D]` (in BigGAN the shared class embedding concatenated with this block's chunk of
    z). `BN` normalizes without its own scale and shift, synchronized across replicas. With
    `c = 0` it is plain batch norm; the gain is `1 + ...` so that training starts from it.

    Args:
        momentum, epsilon: of the batch norm's moving statistics.
        **kwargs: passed to `keras.layers.Layer`.

    Reference:
        de Vries et al. 2017, "Modulating early visual processing by language" (conditional
        batch norm); Brock, Donahue & Simonyan 2018, "Large Scale GAN Training for High
        Fidelity Natural Image Synthesis", https://arxiv.org/abs/1809.11096 (section 3).
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        features_shape, condition_shape = input_shape
        channels = features_shape[-1]
        self.batch_norm = keras.layers.BatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False, synchronized=True, name="bn"
        )
        self.batch_norm.build(features_shape)
        self.gain = keras.layers.Dense(channels, use_bias=False, kernel_initializer="zeros", name="gain")
        self.bias = keras.layers.Dense(channels, use_bias=False, kernel_initializer="zeros", name="bias")
        self.gain.build(condition_shape)
        self.bias.build(condition_shape)

    def call(self, inputs, training=False):
        features, condition = inputs
        normalized = self.batch_norm(features, training=training)
        broadcast = (-1,) + (1,) * (len(features.shape) - 2) + (features.shape[-1],)
        gain = ops.reshape(1.0 + self.gain(condition), broadcast)
        bias = ops.reshape(self.bias(condition), broadcast)
        return normalized * ops.cast(gain, normalized.dtype) + ops.cast(bias, normalized.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="gan_tf")
class ClassProjection(keras.layers.Layer):
    """The projection discriminator's class term: `<embed(y), phi(x)>`, shape `[batch, 1]`.

    Added to the unconditional logit `psi(phi(x))`, it makes D's output the log density ratio
    of a conditional model in which the class enters as an inner product with the features,
    rather than as extra input channels.

    Args:
        num_classes: number of classes.
        spectral_norm: spectral-normalize the class embedding (as BigGAN does).
        **kwargs: passed to `keras.layers.Layer`.

    Reference:
        Miyato & Koyama 2018, "cGANs with Projection Discriminator",
        https://arxiv.org/abs/1802.05637 (equation 3).
    """

    def __init__(self, num_classes, spectral_norm=True, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes}")
        self.num_classes = int(num_classes)
        self.spectral_norm = bool(spectral_norm)

    def build(self, input_shape):
        features_shape, labels_shape = input_shape
        self.embedding = maybe_spectral_norm(
            keras.layers.Embedding(self.num_classes, features_shape[-1], name="class_embedding"), self.spectral_norm
        )
        self.embedding.build(labels_shape)

    def call(self, inputs, training=False):
        features, labels = inputs
        embedded = self.embedding(ops.cast(labels, "int32"), training=training)
        return ops.sum(ops.cast(embedded, features.dtype) * features, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "spectral_norm": self.spectral_norm}


@keras.saving.register_keras_serializable(package="gan_tf")
class SeededDropout(keras.layers.Layer):
    """Dropout whose mask comes from a seed per example, at training and at sampling time alike.

    Called on `[x, seeds]` with `seeds` int32 `[batch, 2]`: example i's mask is drawn by a
    stateless uniform keyed by `seeds[i]` folded with the layer's `salt` (so two layers given the
    same seeds drop different units). The same seed gives the same mask whatever else is in the
    batch, so a seeded translation is reproducible in Keras, in a SavedModel and under
    `tf.distribute`. Pix2Pix uses it as its generator's only noise: dropout stays on when it
    translates (Isola et al. 2017, section 3.1: "we provide noise only in the form of dropout,
    applied ... at both training and test time").

    Args:
        rate: fraction of units dropped, in [0, 1); kept units are scaled by `1 / (1 - rate)`.
        salt: an int that makes this layer's masks differ from other layers'.
    """

    def __init__(self, rate, salt=0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"`rate` must be in [0, 1). Received: rate={rate}")
        self.rate = float(rate)
        self.salt = int(salt)

    def call(self, inputs):
        x, seeds = inputs
        if self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        salt = self.salt

        def mask(seed):
            key = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), salt)
            return tf.cast(tf.random.stateless_uniform(tf.shape(x)[1:], seed=key) < keep, x.dtype)

        masks = tf.map_fn(mask, seeds, fn_output_signature=tf.TensorSpec(x.shape[1:], x.dtype))
        return x * masks / keep

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "salt": self.salt}


@keras.saving.register_keras_serializable(package="gan_tf")
class ImagePool(keras.layers.Layer):
    """A buffer of up to `size` past generated images, from which a discriminator is shown a mix
    of the newest and older fakes (Shrivastava et al. 2017; CycleGAN section 4: "we update the
    discriminators using a history of generated images rather than the ones produced by the
    latest generators", a pool of 50), so D does not chase G's latest output alone.

    `query(images, draws, slots)` handles the batch in order, as the reference code's
    `ImagePool.query`: while the pool is not full each image is stored and returned; then each
    image, with probability 1/2 (`draws[i] < 0.5`), is returned as it is, or else swapped with
    the stored image in slot `slots[i]`, which is returned instead. The random draws come from
    the caller (the model's saved noise stream); the stored images and their count are
    non-trainable weights, so a checkpoint holds the pool and a resumed run continues with it.

    Args:
        size: images kept (0: no pool, `query` returns its input).
        image_shape: `(H, W, C)` of the images.
    """

    def __init__(self, size, image_shape, **kwargs):
        super().__init__(**kwargs)
        if size < 0:
            raise ValueError(f"`size` must be at least 0. Received: size={size}")
        self.size = int(size)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.images = self.add_weight(shape=(max(1, self.size),) + self.image_shape, initializer="zeros",
                                      trainable=False, name="images", aggregation="only_first_replica")
        self.count = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False, name="count",
                                     aggregation="only_first_replica")
        self.built = True

    def query(self, images, draws, slots):
        """The images D is shown for a batch of new fakes `images` (see the class docstring).

        Args:
            images: `[batch, H, W, C]` new generated images.
            draws: `[batch]` uniform values in [0, 1).
            slots: int32 `[batch]` in `[0, size)`.
        """
        if self.size == 0:
            return images
        images = tf.convert_to_tensor(images)
        batch = tf.shape(images)[0]

        def store(slot, image):
            index = tf.reshape(tf.convert_to_tensor(slot, tf.int32), [1, 1])
            self.images.assign(tf.tensor_scatter_nd_update(tf.convert_to_tensor(self.images), index, image[tf.newaxis]))

        def step(i, shown):
            image = images[i]

            def insert():
                store(self.count, image)
                self.count.assign_add(1)
                return image

            def swap():
                old = tf.identity(tf.convert_to_tensor(self.images)[slots[i]])
                with tf.control_dependencies([old]):
                    store(slots[i], image)
                return old

            def keep():
                return image

            chosen = tf.cond(tf.convert_to_tensor(self.count) < self.size, insert, lambda: tf.cond(draws[i] < 0.5, swap, keep))
            return i + 1, shown.write(i, chosen)

        _, shown = tf.while_loop(lambda i, _: i < batch, step,
                                 [tf.constant(0), tf.TensorArray(images.dtype, size=batch, element_shape=images.shape[1:])])
        return tf.ensure_shape(shown.stack(), images.shape)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "image_shape": list(self.image_shape)}


@keras.saving.register_keras_serializable(package="gan_tf")
class ConcatConditionPlanes(keras.layers.Layer):
    """`[features [B, H, W, C], condition [B, K]]` -> `[B, H, W, C + K]`: the condition vector
    repeated over every position and appended as channels (DCGAN-tensorflow's `conv_cond_concat`,
    how MidiNet gives its chord to each layer of G and D)."""

    def call(self, inputs):
        features, condition = inputs
        shape = ops.shape(features)
        planes = ops.broadcast_to(condition[:, None, None, :], (shape[0], shape[1], shape[2], ops.shape(condition)[-1]))
        return ops.concatenate([features, ops.cast(planes, features.dtype)], axis=-1)

    def compute_output_shape(self, input_shapes):
        features, condition = input_shapes
        channels = None if features[-1] is None or condition[-1] is None else features[-1] + condition[-1]
        return (*features[:-1], channels)


@keras.saving.register_keras_serializable(package="gan_tf")
class ConditionPlanesConv2D(keras.layers.Layer):
    """`Conv2D` on `ConcatConditionPlanes()([images, condition])`, without building the planes.

    A convolution is linear in its input channels, so with the kernel split by input channel
    into `W_x` (the image's C channels) and `W_c` (the condition's K):
    `conv([x, planes(c)]) = conv(x, W_x) + sum_k c_k * conv(ones, W_c[..., k, :])`. The K maps
    `conv(ones, W_c[..., k, :])` depend on the kernel alone (with zero padding they differ at the
    borders), so each call computes them once, as one convolution of a single image of ones,
    and mixes them by the condition. The kernel `[kh, kw, C + K, filters]` and bias are those of
    the `Conv2D` it replaces, and so is the output up to float rounding; the cost per image is a
    convolution of the C image channels, not of C + K. (The CGAN's D reads a one-hot label as 10
    or 20 such planes: with 20, its first convolution cost about 20x DCGAN's.)

    Args:
        filters, kernel_size, strides, padding: as `keras.layers.Conv2D`'s.
        **kwargs: passed to `keras.layers.Layer`.

    Example:
        >>> conv = ConditionPlanesConv2D(64, 5, strides=2, padding="same")
        >>> features = conv([images, keras.ops.one_hot(labels, 10)])  # [B, H/2, W/2, 64]
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", **kwargs):
        super().__init__(**kwargs)
        if filters < 1 or kernel_size < 1 or strides < 1 or padding not in ("valid", "same"):
            raise ValueError("`filters`, `kernel_size` and `strides` must be >= 1 and `padding` 'valid' or 'same'. "
                             f"Received: filters={filters}, kernel_size={kernel_size}, strides={strides}, "
                             f"padding={padding!r}")
        self.filters, self.kernel_size, self.strides, self.padding = int(filters), int(kernel_size), int(strides), padding

    def build(self, input_shapes):
        image_shape, condition_shape = input_shapes
        self.image_channels, self.condition_channels = int(image_shape[-1]), int(condition_shape[-1])
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, self.image_channels + self.condition_channels, self.filters),
            initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        images, condition = inputs
        kernel = ops.convert_to_tensor(self.kernel)
        image_kernel, plane_kernel = kernel[:, :, :self.image_channels], kernel[:, :, self.image_channels:]
        features = ops.conv(images, image_kernel, strides=self.strides, padding=self.padding)
        # The K planes' maps as one convolution of a ones image with K * filters output channels.
        plane_kernel = ops.reshape(plane_kernel, (self.kernel_size, self.kernel_size, 1, -1))
        plane_maps = ops.conv(ops.ones_like(images[:1, :, :, :1]), plane_kernel, strides=self.strides,
                              padding=self.padding)[0]
        plane_maps = ops.reshape(plane_maps, (*ops.shape(plane_maps)[:2], self.condition_channels, self.filters))
        condition = ops.cast(condition, features.dtype)
        return features + ops.einsum("bk,hwkf->bhwf", condition, plane_maps) + self.bias

    def compute_output_shape(self, input_shapes):
        image_shape, _ = input_shapes
        sides = []
        for side in image_shape[1:3]:
            if side is None:
                sides.append(None)
            elif self.padding == "same":
                sides.append(-(-side // self.strides))
            else:
                sides.append((side - self.kernel_size) // self.strides + 1)
        return (image_shape[0], *sides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}
