"""Gated PixelCNN: an autoregressive model of 8-bit images with an exact likelihood.

The other baseline the GAN material contrasts GANs with ("exact likelihood, slow sequential
sampling"), built to measure both halves of that claim: `log_likelihood` is exact (a sum of
256-way softmax log-probabilities, one per pixel and channel), and sampling is pixel by pixel,
both the naive way (the whole network on the whole canvas for every pixel) and with a cache of
each layer's activations (`sample(..., sampler="cached")`), which gives the same images.

Architecture (van den Oord et al. 2016b): a vertical stack of `(k//2 + 1) x k` convolutions that
sees the rows above and the current row, and a horizontal stack of `1 x (k//2 + 1)` convolutions
along the current row; the vertical stack reaches the horizontal one only shifted down by one
row, so together they see exactly the pixels before the current one in raster order, with no
blind spot. The first horizontal layer is of mask type A (it excludes the current pixel: its
input is shifted right by one column), the later ones of type B (they include it: by then it
only carries earlier pixels). Each layer is gated, `tanh(a) * sigmoid(b)`, with a residual
connection in the horizontal stack and, for the class-conditional model, a per-class bias in
both stacks' gates. The channels of one pixel are predicted independently given the pixels
before it (a proper distribution; PixelCNN++ links them, this model does not).

References:
    van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks",
    https://arxiv.org/abs/1601.06759; van den Oord et al. 2016, "Conditional Image Generation
    with PixelCNN Decoders", https://arxiv.org/abs/1606.05328; Ramachandran et al. 2017, "Fast
    Generation for Convolutional Autoregressive Models", https://arxiv.org/abs/1704.06001; Ho &
    Salimans 2022, "Classifier-Free Diffusion Guidance", https://arxiv.org/abs/2207.12598 (the
    guidance of the conditional model's sampling).
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.autoregressive import AutoregressiveModel, levels_of
from gan_tf.models.gan import check_num_classes
from gan_tf.nn.noise import replica_slice


def _gate(pre_activation):
    a, b = ops.split(pre_activation, 2, axis=-1)
    return ops.tanh(a) * ops.sigmoid(b)


@keras.saving.register_keras_serializable(package="gan_tf")
class PixelCNN(AutoregressiveModel):
    """A gated PixelCNN trained by `fit` on the negative log-likelihood, with one optimizer.

    Args:
        image_shape: `(H, W, C)`.
        filters: channels of each stack (F).
        layers: gated layers (the first of mask type A, the others B).
        kernel_size: k, odd: vertical kernels `(k//2 + 1) x k`, horizontal `1 x (k//2 + 1)`.
        num_classes: None, or the number of classes of a class-conditional model
            (`ConditionalPixelCNN` sets it).
        class_map_channels: with `num_classes`, 0 for the paper's location-independent
            conditioning only (a per-class bias in every gate), or the channels of a learned
            per-class map `[H, W, class_map_channels]` that every layer adds to its gates through
            a 1x1 convolution: the paper's location-dependent conditioning `V * m(h)`, with
            `m` a lookup table since `h` is a class.
        class_table_scale: the per-class tables (biases and maps) hold their values divided by
            this number and are multiplied by it when read: the same values at the start, but
            Adam, which moves any weight by about its learning rate a step, moves them this many
            times faster (as the CVAE's class prior). 1: ordinary weights.
        label_dropout: with `num_classes`, the share of training labels replaced by a "no class"
            label (an extra row of the class tables), so that one network learns both `p(x | y)`
            and `p(x)`: what `guidance` needs. 0: no extra row.
        guidance: with `label_dropout`, sample with classifier-free guidance of weight w: each
            pixel's logits are `(1 + w) * logits(x | y) - w * logits(x)`, i.e. draws from
            `p(x | y) * p(y | x)^w` up to normalisation (Ho & Salimans 2022), which shows the asked
            class more often at the cost of diversity. Sampling runs the network on twice the
            batch. The likelihood (`log_likelihood`, bits/dim) is the conditional model's, not
            guided. Can be changed after training (`model.guidance = w`). 0: plain `p(x | y)`.
        seed: seed of the sampling stream (`sample` with seed None draws from it); the label
            dropout stream starts from `seed + 1`.
        **kwargs: passed to `keras.Model`.

    Example:
        >>> model = PixelCNN(image_shape=(28, 28, 1))
        >>> model.compile_optimizers(model.default_optimizers())
        >>> model.fit(load_dataset("mnist_5k", 64, value_range=PixelCNN.value_range), epochs=20)
        >>> model.log_likelihood(test_images)["bits_per_dim"]

    References:
        van den Oord et al. 2016, https://arxiv.org/abs/1606.05328; Ramachandran et al. 2017,
        https://arxiv.org/abs/1704.06001
    """


    def __init__(self, image_shape=(28, 28, 1), filters=32, layers=5, kernel_size=5, num_classes=None,
                 class_map_channels=0, class_table_scale=1.0, label_dropout=0.0, guidance=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"`image_shape` must be (height, width, channels). Received: image_shape={image_shape}")
        for name, value, minimum in (("filters", filters, 1), ("layers", layers, 1), ("kernel_size", kernel_size, 3)):
            if int(value) != value or value < minimum:
                raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value}")
        if kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd. Received: kernel_size={kernel_size}")
        self.image_shape = image_shape
        self.filters, self.num_layers, self.kernel_size = int(filters), int(layers), int(kernel_size)
        self.num_classes = None if num_classes is None else check_num_classes(num_classes)
        if int(class_map_channels) != class_map_channels or class_map_channels < 0:
            raise ValueError(f"`class_map_channels` must be an integer >= 0. Received: class_map_channels={class_map_channels}")
        if class_map_channels and not self.num_classes:
            raise ValueError("`class_map_channels` conditions on a class: it needs `num_classes`.")
        self.class_map_channels = int(class_map_channels)
        if not class_table_scale > 0:
            raise ValueError(f"`class_table_scale` must be > 0. Received: class_table_scale={class_table_scale}")
        self.class_table_scale = float(class_table_scale)
        if not 0.0 <= label_dropout < 1.0:
            raise ValueError(f"`label_dropout` must be in [0, 1). Received: label_dropout={label_dropout}")
        if label_dropout and not self.num_classes:
            raise ValueError("`label_dropout` drops class labels: it needs `num_classes`.")
        self.label_dropout = float(label_dropout)
        self.seed = seed
        half = self.kernel_size // 2
        self.vertical_height = half + 1
        height, width, channels = image_shape
        two_f = 2 * self.filters
        self.vertical_convs = [keras.layers.Conv2D(two_f, (half + 1, self.kernel_size), name=f"vertical_{i}")
                               for i in range(self.num_layers)]
        self.horizontal_convs = [keras.layers.Conv2D(two_f, (1, half + 1), name=f"horizontal_{i}")
                                 for i in range(self.num_layers)]
        self.links = [keras.layers.Conv2D(two_f, 1, name=f"link_{i}") for i in range(self.num_layers)]
        self.residuals = [keras.layers.Conv2D(self.filters, 1, name=f"residual_{i}") for i in range(self.num_layers)]
        # Keras's default Embedding init, U(-0.05, 0.05), divided by the scale the tables are read with.
        table_init = keras.initializers.RandomUniform(-0.05 / self.class_table_scale, 0.05 / self.class_table_scale)
        # With label dropout, row `num_classes` of each table is the "no class" label's.
        table_rows = None if not self.num_classes else self.num_classes + (1 if self.label_dropout else 0)
        self.class_biases = ([keras.layers.Embedding(table_rows, 2 * two_f, embeddings_initializer=table_init,
                                                     name=f"class_bias_{i}")
                              for i in range(self.num_layers)] if self.num_classes else [])
        self.class_maps = (keras.layers.Embedding(table_rows, height * width * self.class_map_channels,
                                                  embeddings_initializer=table_init, name="class_maps")
                           if self.class_map_channels else None)
        self.class_map_links = [keras.layers.Conv2D(2 * two_f, 1, name=f"class_map_link_{i}")
                                for i in range(self.num_layers)] if self.class_map_channels else []
        self.build_head(self.filters, channels)
        self.guidance = guidance
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")
        if self.label_dropout:
            self.label_dropout_generator = keras.random.SeedGenerator(None if seed is None else seed + 1,
                                                                      name="label_dropout_seed")
        # Build every layer once on a full-size input.
        self.logits(ops.zeros((1,) + image_shape), None if not self.num_classes else ops.zeros((1,), "int32"))
        self.built = True

    @property
    def guidance(self):
        """The classifier-free guidance weight of sampling (see the class docstring)."""
        return self._guidance

    @guidance.setter
    def guidance(self, value):
        if not value >= 0:
            raise ValueError(f"`guidance` must be >= 0. Received: guidance={value}")
        if value and not self.label_dropout:
            raise ValueError("`guidance` needs the unconditional model that `label_dropout` > 0 trains.")
        self._guidance = float(value)
        self._samplers.clear()  # traced with the old weight

    def training_labels(self, labels):
        """`labels` with a `label_dropout` share replaced by the "no class" label `num_classes`
        (each replica its slice of the global batch's draw, from the model's seeded stream)."""
        if not self.label_dropout or labels is None:
            return labels
        dropped = replica_slice(
            lambda size: keras.random.uniform((size,), seed=self.label_dropout_generator) < self.label_dropout,
            ops.shape(labels)[0])
        return ops.where(dropped, self.num_classes, labels)

    def sample_levels(self, gumbel, labels=None, sampler="cached"):
        """With `guidance`, the batch runs twice, with `labels` and with the "no class" label,
        and `_draw` draws both halves' pixels from the guided logits."""
        if not self.guidance:
            return super().sample_levels(gumbel, labels, sampler)
        count = tf.shape(gumbel)[0]
        unconditional = tf.fill([count], self.num_classes)
        levels = super().sample_levels(tf.concat([gumbel, gumbel], 0),
                                       tf.concat([tf.cast(labels, "int32"), unconditional], 0), sampler)
        return levels[:count]

    def _draw(self, logits, gumbel):
        if not self.guidance:
            return super()._draw(logits, gumbel)
        conditional, unconditional = tf.split(logits, 2)
        guided = conditional + self.guidance * (conditional - unconditional)
        levels = super()._draw(guided, tf.split(gumbel, 2)[0])
        return tf.concat([levels, levels], 0)

    # ------------------------------------------------------------------------- the network

    def _class_bias(self, layer, labels):
        """`(vertical, horizontal)` gate biases for `labels`, or zeros: `[batch, 1, 1, 2F]`, or
        `[batch, H, W, 2F]` with `class_map_channels` (a different bias at every position)."""
        if not self.num_classes:
            return 0.0, 0.0
        scale = self.class_table_scale
        bias = scale * self.class_biases[layer](labels)[:, None, None, :]
        if self.class_map_channels:
            maps = ops.reshape(scale * self.class_maps(labels), (-1,) + self.image_shape[:2] + (self.class_map_channels,))
            bias = bias + self.class_map_links[layer](maps)
        return bias[..., : 2 * self.filters], bias[..., 2 * self.filters :]

    def _bias_row(self, bias, row):
        """Row `row` of a gate bias from `_class_bias` (the bias itself if it has no rows)."""
        return tf.gather(bias, [row], axis=1) if self.class_map_channels else bias

    def _vertical(self, layer, inputs, bias):
        """Pre-activations of vertical layer `layer`: output row r sees input rows r-k//2..r."""
        half = self.kernel_size // 2
        padded = ops.pad(inputs, [[0, 0], [self.vertical_height - 1, 0], [half, half], [0, 0]])
        return self.vertical_convs[layer](padded) + bias

    def _horizontal(self, layer, inputs, link, bias):
        """Pre-activations of horizontal layer `layer` (type A for layer 0: the current column
        is left out) plus the vertical stack's link."""
        half = self.kernel_size // 2
        if layer == 0:  # shifted right by one: column j sees columns j-1-k//2 .. j-1
            padded = ops.pad(inputs, [[0, 0], [0, 0], [half + 1, 0], [0, 0]])[:, :, :-1]
        else:
            padded = ops.pad(inputs, [[0, 0], [0, 0], [half, 0], [0, 0]])
        return self.horizontal_convs[layer](padded) + link + bias

    def _shift_down(self, values):
        """Row r gets row r - 1 (row 0 zeros): the vertical stack reaches row r from above only."""
        return ops.pad(values, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]

    def logits(self, images, labels=None):
        """`[batch, H, W, C, 256]` logits of each pixel's level given the pixels before it."""
        images = ops.convert_to_tensor(images, "float32")
        vertical = horizontal = images
        for layer in range(self.num_layers):
            v_bias, h_bias = self._class_bias(layer, labels)
            v_pre = self._vertical(layer, vertical, v_bias)
            link = self.links[layer](self._shift_down(v_pre))
            h_gated = _gate(self._horizontal(layer, horizontal, link, h_bias))
            residual = self.residuals[layer](h_gated)
            horizontal = residual if layer == 0 else horizontal + residual
            vertical = _gate(v_pre)
        return self._head(horizontal)

    # ------------------------------------------------------------------------------ sample

    def _sample_cached(self, gumbel, labels):
        """The fast sampler, as one graph: each vertical layer's inputs are cached row by row
        (rows that are done never change), so a finished row costs one row of every vertical
        layer, and each pixel one row of the horizontal stack, not the whole network."""
        height, width, channels = self.image_shape
        count = tf.shape(gumbel)[0]
        biases = [self._class_bias(layer, labels) for layer in range(self.num_layers)]
        inputs_width = [channels] + [self.filters] * (self.num_layers - 1)
        above = self.vertical_height - 1  # zero rows above row 0, as `_vertical` pads
        zero_link_row = tf.zeros(tf.stack([count, 1, width, 2 * self.filters]))

        def pixel(j, row, links, gumbel_row):
            horizontal = row
            for layer in range(self.num_layers):
                h_gated = _gate(self._horizontal(layer, horizontal, links[layer], 0.0))
                residual = self.residuals[layer](h_gated)
                horizontal = residual if layer == 0 else horizontal + residual
            logits = tf.gather(self._head(horizontal)[:, 0], j, axis=1)  # [batch, C, 256]
            values = self.level_values(self._draw(logits, tf.gather(gumbel_row, j, axis=1)))
            column = tf.reshape(tf.one_hot(j, width), (1, 1, width, 1))
            return j + 1, row * (1.0 - column) + values[:, None, None, :] * column

        def image_row(i, rows, caches, links):
            gumbel_row = tf.gather(gumbel, i, axis=1)  # [batch, W, C, 256]
            row = tf.zeros(tf.stack([count, 1, width, channels]))
            # The row's links and horizontal biases are the same for all its pixels: added once here.
            # (Added per pixel, Grappler rewrites a per-position bias's sum into an accumulator
            # that fails in this loop with AlreadyExistsError.)
            row_links = [links[layer] + self._bias_row(biases[layer][1], i) for layer in range(self.num_layers)]
            _, row = tf.while_loop(lambda j, *_: j < width, lambda j, row: pixel(j, row, row_links, gumbel_row),
                                   [tf.constant(0), row])
            # The finished row enters each vertical layer's cache; the layer's row i (from its
            # inputs' rows i - k//2 .. i) gives the link that row i + 1 sees.
            layer_input, new_caches, new_links = row, [], []
            for layer in range(self.num_layers):
                cache = tf.tensor_scatter_nd_update(
                    tf.transpose(caches[layer], [1, 0, 2, 3]), [[i + above]], tf.transpose(layer_input, [1, 0, 2, 3]))
                cache = tf.transpose(cache, [1, 0, 2, 3])
                window = tf.ensure_shape(cache[:, i : i + self.vertical_height],
                                         [None, self.vertical_height, width, inputs_width[layer]])
                v_pre = self.vertical_convs[layer](tf.pad(window, [[0, 0], [0, 0], [self.kernel_size // 2] * 2, [0, 0]]))
                v_pre = v_pre + self._bias_row(biases[layer][0], i)
                new_caches.append(cache)
                new_links.append(self.links[layer](v_pre))
                layer_input = _gate(v_pre)
            rows = rows * (1.0 - tf.reshape(tf.one_hot(i, height), (1, height, 1, 1))) + row * tf.reshape(
                tf.one_hot(i, height), (1, height, 1, 1))
            return i + 1, rows, new_caches, new_links

        caches = [tf.zeros(tf.stack([count, height + above, width, c])) for c in inputs_width]
        links = [self.links[layer](zero_link_row) for layer in range(self.num_layers)]  # row 0: nothing above
        rows = tf.zeros(tf.stack([count, height, width, channels]))
        _, rows, _, _ = tf.while_loop(lambda i, *_: i < height, image_row, [tf.constant(0), rows, caches, links])
        return levels_of(rows, self.value_range)

    def train_step_flops_per_image(self):
        """Forward and backward (3x) of every convolution, counted per output position."""
        height, width, channels = self.image_shape
        two_f, f, half = 2 * self.filters, self.filters, self.kernel_size // 2
        per_position = 0
        for layer in range(self.num_layers):
            inputs = channels if layer == 0 else f
            per_position += 2 * inputs * two_f * (half + 1) * self.kernel_size  # vertical
            per_position += 2 * inputs * two_f * (half + 1)  # horizontal
            per_position += 2 * two_f * two_f + 2 * f * f  # link, residual
            per_position += 2 * self.class_map_channels * 2 * two_f  # class map link
        per_position += 2 * f * f + 2 * f * channels * 256  # head
        return 3 * per_position * height * width

    def get_config(self):
        return {"name": self.name, "image_shape": self.image_shape, "filters": self.filters,
                "layers": self.num_layers, "kernel_size": self.kernel_size, "num_classes": self.num_classes,
                "class_map_channels": self.class_map_channels, "class_table_scale": self.class_table_scale,
                "label_dropout": self.label_dropout, "guidance": self.guidance, "seed": self.seed}


@keras.saving.register_keras_serializable(package="gan_tf")
class ConditionalPixelCNN(PixelCNN):
    """The class-conditional gated PixelCNN: `p(x | y)`, a learned per-class bias in every
    layer's gates, and a learned per-class map that adds a different bias at every position
    (van den Oord et al. 2016, section 2.3: location-independent and location-dependent
    conditioning); trained with 10% of labels dropped so that it also models `p(x)`, and sampled
    with classifier-free guidance (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598).

    Why the map: five layers see about ten rows up, and a bias that is the same at every
    position cannot say where the class's strokes go, so the class hardly shapes the digit:
    samples showed the asked class 12% of the time after 8 epochs on mnist_5k. With the map,
    64% after the same 8 epochs, and bits/dim 1.180 against 1.226 (`bench/quality.py
    --epochs=8`; docs/results/likelihood.md, "Conditional likelihood models: where the class
    goes").

    Args:
        num_classes: number of classes (from the data by `from_data`).
        class_map_channels: channels of the per-class map (`PixelCNN`; 0: the bias alone).
        class_table_scale: how many times faster than ordinary weights the per-class biases and
            maps learn (`PixelCNN`). 10: label accuracy 0.767 against 0.682 at 1 (0.717 against
            0.641 on another machine), bits/dim 1.177 against 1.176, after the same 8 epochs;
            30 gained no more (docs/results/likelihood.md).
        label_dropout: the share of training labels replaced by "no class" (`PixelCNN`), 0.1
            as in Ho & Salimans 2022: what `guidance` needs.
        guidance: classifier-free guidance weight of sampling (`PixelCNN`). 1: label accuracy
            0.936 against 0.708 unguided, FID 123.8 against 145.0, recall 0.467 against 0.658,
            after 6 epochs on mnist_5k (`bench/guidance.py`; 2 and 3 gained 0.01 in label
            accuracy and lost half the recall again). Set 0 for the diversity of `p(x | y)`.
        **kwargs: see `PixelCNN`.
    """

    conditional = True
    needs_labels = True
    # Saved before the class map existed: the bias alone; before the scale: ordinary weights;
    # before label dropout: no "no class" row, so no guidance.
    older_config_defaults = {"class_map_channels": 0, "class_table_scale": 1.0, "label_dropout": 0.0, "guidance": 0.0}

    def __init__(self, num_classes=10, class_map_channels=4, class_table_scale=10.0, label_dropout=0.1, guidance=1.0,
                 **kwargs):
        super().__init__(num_classes=num_classes, class_map_channels=class_map_channels,
                         class_table_scale=class_table_scale, label_dropout=label_dropout, guidance=guidance, **kwargs)

    @classmethod
    def from_config(cls, config):
        return cls(**{**cls.older_config_defaults, **config})

