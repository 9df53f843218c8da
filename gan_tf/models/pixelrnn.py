"""PixelRNN: Row LSTM and Diagonal BiLSTM, autoregressive models of 8-bit images with an exact likelihood.

The paper's two recurrent models, through the same contract as the gated PixelCNN
(`gan_tf.models.autoregressive`: a 256-way softmax per pixel and channel, `fit` on the exact
negative log-likelihood, raster-order sampling with Gumbel noise drawn up front, the export).

Architecture (van den Oord, Kalchbrenner & Kavukcuoglu 2016, sections 3.1, 3.2, 3.4 and Table 1):

* a 7x7 convolution of mask type A first (the current pixel left out), written as two plain
  convolutions: a 3x7 one over the three rows above and a 1x3 one over the three pixels to the
  left in the current row;
* `layers` recurrent layers of `filters` units, each with a residual connection (its output
  through a 1x1 convolution, added to its input);
* **Row LSTM**: the image is processed row by row; the input-to-state component is a 1x2
  convolution along the row, masked (type B: the current and the left column), the
  state-to-state component a 1x3 convolution of the previous row's hidden state, so each pixel
  sees a triangle of the rows above;
* **Diagonal BiLSTM**: each map is skewed (row i shifted right by i) so that the image's
  diagonals become columns, processed one column at a time: the input-to-state component is a
  1x1 convolution, the state-to-state one a 2x1 convolution of the previous column's state
  (the pixel to the left and the one above). A second LSTM runs on the mirrored image; its
  output is shifted down by one row (so it sees only rows above) and added: together they see
  every pixel before the current one;
* the head: ReLU, 1x1 convolution, ReLU, 1x1 convolution to 256 logits per channel. As in our
  PixelCNN, the channels of one pixel are independent given the pixels before it (the paper
  links R, G and B by masks); for the paper's greyscale MNIST that is the same model.

The paper's results: CIFAR-10 3.00 bits/dim (Diagonal BiLSTM), 3.07 (Row LSTM), 3.14 (PixelCNN);
binarised MNIST 79.20 nats (Diagonal BiLSTM, 7 layers).

Reference:
    van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks",
    https://arxiv.org/abs/1601.06759
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.models.autoregressive import AutoregressiveModel, levels_of

RECURRENCES = ("row_lstm", "diagonal_bilstm")
# The first layer's mask-A 7x7 convolution: rows above and pixels to the left it reaches.
FIRST_HALF = 3


def skew(maps):
    """`[B, H, W, C]` -> `[B, H, W + H - 1, C]`, row i shifted right by i (zeros elsewhere):
    column t then holds the diagonal `i + j = t`."""
    _, height, width, channels = maps.shape
    length = width + height  # each row padded to W + H, then the flat rows re-cut one shorter
    flat = ops.reshape(ops.pad(maps, [[0, 0], [0, 0], [0, height], [0, 0]]), (-1, height * length, channels))
    return ops.reshape(flat[:, : height * (length - 1)], (-1, height, length - 1, channels))


def unskew(maps, width):
    """The inverse of `skew`: `[B, H, W + H - 1, C]` -> `[B, H, W, C]`."""
    _, height, skewed_width, channels = maps.shape
    flat = ops.pad(ops.reshape(maps, (-1, height * skewed_width, channels)), [[0, 0], [0, height], [0, 0]])
    return ops.reshape(flat, (-1, height, skewed_width + 1, channels))[:, :, :width]


def lstm_cell(gates, cell):
    """One LSTM step from its summed gates `[..., 4F]` (i, f, o, g) and the previous cell state:
    the new `(hidden, cell)`."""
    i, f, o, g = tf.split(gates, 4, axis=-1)
    cell = tf.sigmoid(f) * cell + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(cell), cell


def lstm_scan_states(input_gates, state_gates_of):
    """Runs an LSTM along the first axis of `input_gates` `[T, B, N, 4F]` (i, f, o, g), the
    state's contribution to step t's gates being `state_gates_of(h_{t-1})` `[B, N, 4F]`.
    Returns the hidden and cell states, each `[T, B, N, F]`."""
    units = input_gates.shape[-1] // 4
    zeros = tf.zeros_like(input_gates[0][..., :units])
    return tf.scan(lambda carry, gates: lstm_cell(gates + state_gates_of(carry[0]), carry[1]), input_gates,
                   initializer=(zeros, zeros))


def lstm_scan(input_gates, state_gates_of):
    """`lstm_scan_states`' hidden states `[T, B, N, F]`."""
    return lstm_scan_states(input_gates, state_gates_of)[0]


@keras.saving.register_keras_serializable(package="gan_tf")
class PixelRNN(AutoregressiveModel):
    """Row LSTM or Diagonal BiLSTM (see the module docstring), trained by `fit` on the exact NLL.

    Args:
        image_shape: `(H, W, C)`.
        recurrence: `"row_lstm"` or `"diagonal_bilstm"` (the paper's best). The Row LSTM is
            the default by measurement (docs/results/likelihood.md): its step is the cheapest,
            and in 150 s on 2 CPU cores it matched the PixelCNN's bits/dim (1.256 against
            1.250). At equal updates the Diagonal BiLSTM is ahead of it (mnist_5k 1.227 against
            1.260, fashion_mnist 3.507 against 3.522) and samples fastest, but in 150 s it
            makes 145 updates to the Row LSTM's 416 and ends at 1.416.
        filters: units of each LSTM and channels between layers (the paper: 16 to 128).
        layers: recurrent layers (the paper: 7 on MNIST, 12 on CIFAR-10).
        seed: seed of the sampling stream (`sample` with seed None draws from it).
        **kwargs: passed to `keras.Model`.

    Example:
        >>> model = PixelRNN(recurrence="row_lstm", filters=32, layers=2)  # or "diagonal_bilstm"
        >>> model.compile_optimizers(model.default_optimizers())
        >>> model.fit(load_dataset("mnist_5k", 64, value_range=PixelRNN.value_range), epochs=5)
        >>> model.log_likelihood(test_images)["bits_per_dim"]

    Reference:
        van den Oord et al. 2016, https://arxiv.org/abs/1601.06759
    """

    def __init__(self, image_shape=(28, 28, 1), recurrence="row_lstm", filters=32, layers=2, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"`image_shape` must be (height, width, channels). Received: image_shape={image_shape}")
        if recurrence not in RECURRENCES:
            raise ValueError(f"`recurrence` must be one of {RECURRENCES}. Received: recurrence={recurrence!r}")
        for name, value in (("filters", filters), ("layers", layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value}")
        self.image_shape, self.recurrence = image_shape, recurrence
        self.filters, self.num_layers = int(filters), int(layers)
        self.num_classes = None
        self.seed = seed
        height, width, channels = image_shape
        f, four_f = self.filters, 4 * self.filters
        self.first_above = keras.layers.Conv2D(f, (FIRST_HALF, 2 * FIRST_HALF + 1), name="first_above")
        self.first_left = keras.layers.Conv2D(f, (1, FIRST_HALF), use_bias=False, name="first_left")
        directions = ("",) if recurrence == "row_lstm" else ("", "mirrored_")
        if recurrence == "row_lstm":  # masked 1x2 along the row; 1x3 over the row above
            self.input_to_state = {d: [keras.layers.Conv2D(four_f, (1, 2), name=f"input_to_state_{i}")
                                       for i in range(self.num_layers)] for d in directions}
            self.state_to_state = {d: [keras.layers.Conv1D(four_f, 3, padding="same", use_bias=False,
                                                           name=f"state_to_state_{i}") for i in range(self.num_layers)]
                                   for d in directions}
            state_length = width
        else:  # 1x1 on the skewed map; 2x1 over the previous column (the pixels left and above)
            self.input_to_state = {d: [keras.layers.Conv2D(four_f, 1, name=f"{d}input_to_state_{i}")
                                       for i in range(self.num_layers)] for d in directions}
            self.state_to_state = {d: [keras.layers.Conv1D(four_f, 2, use_bias=False, name=f"{d}state_to_state_{i}")
                                       for i in range(self.num_layers)] for d in directions}
            state_length = height + 1
        for convs in self.state_to_state.values():  # built here: they are first called inside tf.scan
            for conv in convs:
                conv.build((None, state_length, f))
        self.residuals = [keras.layers.Conv2D(f, 1, name=f"residual_{i}") for i in range(self.num_layers)]
        self.build_head(self.filters, channels)
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")
        self.logits(ops.zeros((1,) + image_shape))  # builds every layer on a full-size input
        self.built = True

    # ------------------------------------------------------------------------- the network

    def _first(self, images):
        """The mask-A 7x7 convolution: three rows above (3x7) plus three pixels to the left (1x3)."""
        height, width = self.image_shape[:2]
        above = self.first_above(ops.pad(images, [[0, 0], [FIRST_HALF, 0], [FIRST_HALF, FIRST_HALF], [0, 0]]))
        left = self.first_left(ops.pad(images, [[0, 0], [0, 0], [FIRST_HALF, 0], [0, 0]])[:, :, :-1])
        return above[:, :height] + left

    def _row_lstm(self, layer, inputs):
        """Row LSTM layer `layer` on `[B, H, W, F]`: one LSTM step per row."""
        gates = self.input_to_state[""][layer](ops.pad(inputs, [[0, 0], [0, 0], [1, 0], [0, 0]]))  # columns j-1, j
        hidden = lstm_scan(tf.transpose(gates, [1, 0, 2, 3]), self.state_to_state[""][layer])
        return tf.transpose(hidden, [1, 0, 2, 3])

    def _diagonal_scan(self, direction, layer, skewed):
        """The LSTM of one direction of Diagonal BiLSTM layer `layer` over a skewed map
        `[B, H, T, F]`, a step per column: the hidden and cell states, each `[T, B, H, F]`."""
        gates = self.input_to_state[direction][layer](skewed)  # [B, H, T, 4F]
        state_conv = self.state_to_state[direction][layer]
        return lstm_scan_states(tf.transpose(gates, [2, 0, 1, 3]),  # the previous column's rows i-1 and i
                                lambda state: state_conv(ops.pad(state, [[0, 0], [1, 0], [0, 0]])))

    def _diagonal_lstm(self, direction, layer, inputs):
        """One direction of Diagonal BiLSTM layer `layer`: an LSTM step per column of the skewed map."""
        hidden, _ = self._diagonal_scan(direction, layer, skew(inputs))
        return unskew(tf.transpose(hidden, [1, 2, 0, 3]), self.image_shape[1])

    def _diagonal_bilstm(self, layer, inputs):
        """Both directions; the mirrored one's output shifted down a row (it saw the row's right)."""
        left = self._diagonal_lstm("", layer, inputs)
        right = ops.flip(self._diagonal_lstm("mirrored_", layer, ops.flip(inputs, axis=2)), axis=2)
        return left + ops.pad(right, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]

    def logits(self, images, labels=None):
        """`[batch, H, W, C, 256]` logits of each pixel's level given the pixels before it."""
        features = self._first(ops.convert_to_tensor(images, "float32"))
        recurrent = self._row_lstm if self.recurrence == "row_lstm" else self._diagonal_bilstm
        for layer in range(self.num_layers):
            features = features + self.residuals[layer](recurrent(layer, features))
        return self._head(features)

    # ------------------------------------------------------------------------------ sample

    def _sample_cached(self, gumbel, labels):
        """The pixels done are fixed, so their LSTM states are kept and each pixel computes only
        what it adds (`_sample_rows` for the Row LSTM, `_sample_diagonals` for the Diagonal
        BiLSTM). Draws the naive sampler's images from the same Gumbel noise."""
        if self.recurrence == "row_lstm":
            return self._sample_rows(gumbel)
        return self._sample_diagonals(gumbel)

    def _first_rows_above(self, canvas, i):
        """The current row `[B, 1, W, C]` of the canvas and the first layer's part from the three
        rows above it `[B, W, F]` (fixed while the row is drawn)."""
        window = tf.pad(canvas, [[0, 0], [FIRST_HALF, 0], [0, 0], [0, 0]])[:, i : i + FIRST_HALF + 1]
        window = tf.ensure_shape(window, [None, FIRST_HALF + 1] + list(self.image_shape[1:]))
        above = self.first_above(ops.pad(window[:, :FIRST_HALF], [[0, 0], [0, 0], [FIRST_HALF] * 2, [0, 0]]))
        return window[:, FIRST_HALF:], above[:, 0]

    def _first_left(self, row):
        """The first layer's part from the three pixels to the left, along a row `[B, 1, W, C]`: `[B, W, F]`."""
        return self.first_left(ops.pad(row, [[0, 0], [0, 0], [FIRST_HALF, 0], [0, 0]])[:, :, :-1])[:, 0]

    def _sample_rows(self, gumbel):
        """Row LSTM: each pixel reruns one row of every layer (from the kept states of the row
        above and the first layer's part from the rows above, computed once per row), not the
        whole image."""
        height, width, channels = self.image_shape
        count = tf.shape(gumbel)[0]
        zeros = tf.zeros(tf.stack([count, width, self.filters]))

        def row_pass(row, first_above, states):
            """Every layer on one row `[B, 1, W, C]`, given the first layer's part from the rows
            above it `[B, W, F]` and each layer's `(h, c)` of the row above. Returns the row's
            features `[B, 1, W, F]` and each layer's new `(h, c)`."""
            features, new_states = (first_above + self._first_left(row))[:, None], []
            for layer in range(self.num_layers):
                hidden, cell = states[layer]
                gates = self.input_to_state[""][layer](ops.pad(features, [[0, 0], [0, 0], [1, 0], [0, 0]]))[:, 0]
                hidden, cell = lstm_cell(gates + self.state_to_state[""][layer](hidden), cell)
                new_states.append((hidden, cell))
                features = features + self.residuals[layer](hidden[:, None])
            return features, new_states

        def image_row(i, canvas, states):
            gumbel_row = tf.gather(gumbel, i, axis=1)  # [batch, W, C, 256]
            row, first_above = self._first_rows_above(canvas, i)  # row i still empty

            def pixel(j, row):
                features, _ = row_pass(row, first_above, states)
                logits = tf.gather(self._head(features)[:, 0], j, axis=1)  # [batch, C, 256]
                values = self.level_values(self._draw(logits, tf.gather(gumbel_row, j, axis=1)))
                spot = tf.reshape(tf.one_hot(j, width), (1, 1, width, 1))
                return j + 1, row * (1.0 - spot) + values[:, None, None, :] * spot

            _, row = tf.while_loop(lambda j, _: j < width, pixel, [tf.constant(0), row])
            _, states = row_pass(row, first_above, states)  # the finished row's states, for the row below
            here = tf.reshape(tf.one_hot(i, height), (1, height, 1, 1))
            return i + 1, canvas * (1.0 - here) + row * here, states

        canvas = tf.zeros(tf.stack([count, height, width, channels]))
        states = [(zeros, zeros) for _ in range(self.num_layers)]
        _, canvas, _ = tf.while_loop(lambda i, *_: i < height, image_row, [tf.constant(0), canvas, states])
        return levels_of(canvas, self.value_range)

    def _boundary_states(self, direction, layer):
        """The state `(h, c)` of one direction of Diagonal BiLSTM layer `layer` just before each
        row's first pixel (`[H, F]` each; in the skewed map, row i's column i - 1). The skewed
        map is zero there (left of the rows' starts) whatever the image, so these come from the
        biases alone: the cached sampler starts each row's scan from them."""
        height = self.image_shape[0]
        zeros = tf.zeros([height, self.filters])
        if height == 1:
            return zeros, zeros
        hidden, cell = self._diagonal_scan(direction, layer, tf.zeros([1, height, height - 1, self.filters]))
        rows = tf.range(1, height)
        return tuple(tf.concat([zeros[:1], tf.gather_nd(states[:, 0], tf.stack([rows - 1, rows], axis=1))], axis=0)
                     for states in (hidden, cell))

    def _diagonal_step(self, direction, layer, features, above, previous):
        """One step of one direction's LSTM at one pixel: its layer input `features` `[B, F]`,
        the hidden state of the pixel above `above` `[B, F]`, the `(h, c)` of the pixel before it
        along the row (to the left; to the right for the mirrored direction)."""
        gates = self.input_to_state[direction][layer](features[:, None, None])[:, 0, 0]
        gates += self.state_to_state[direction][layer](tf.stack([above, previous[0]], axis=1))[:, 0]
        return lstm_cell(gates, previous[1])

    def _sample_diagonals(self, gumbel):
        """Diagonal BiLSTM: the state of pixel (i, j) comes from the pixel above and the pixel
        to its left (the skewed map's previous column), so each pixel takes one LSTM step per
        layer from the kept states of the row above and the step just before it. The mirrored
        direction, which the layers add shifted down a row, runs right to left over a row once
        it is drawn (its layer inputs recorded on the way), for the row below."""
        height, width, channels = self.image_shape
        count = tf.shape(gumbel)[0]
        directions = ("", "mirrored_")
        boundary = {d: [self._boundary_states(d, layer) for layer in range(self.num_layers)] for d in directions}
        row_zeros = tf.zeros(tf.stack([count, width, self.filters]))
        batch_zeros = tf.zeros(tf.stack([count, self.filters]))

        def start_of(direction, layer, i):
            hidden, cell = boundary[direction][layer]
            return batch_zeros + hidden[i], batch_zeros + cell[i]

        def mirrored_row(layer, inputs, above, i):
            """The mirrored LSTM over row i, right to left: its hidden states `[B, W, F]`."""
            def step(previous, pixel):
                return self._diagonal_step("mirrored_", layer, pixel[0], pixel[1], previous)

            right_to_left = [tf.reverse(tf.transpose(t, [1, 0, 2]), [0]) for t in (inputs, above)]
            hidden, _ = tf.scan(step, tuple(right_to_left), initializer=start_of("mirrored_", layer, i))
            return tf.transpose(tf.reverse(hidden, [0]), [1, 0, 2])

        def image_row(i, canvas, above, mirrored_above):
            """`above`: each layer's forward hidden states of row i - 1; `mirrored_above`: the
            mirrored ones, which are also what row i adds from the mirrored direction."""
            row, first_above = self._first_rows_above(canvas, i)
            gumbel_row = tf.gather(gumbel, i, axis=1)  # [batch, W, C, 256]

            def pixel(j, row, previous, inputs, hiddens):
                features = tf.gather(first_above + self._first_left(row), j, axis=1)  # [B, F]
                spot = tf.reshape(tf.one_hot(j, width), (1, width, 1))
                new_previous, new_inputs, new_hiddens = [], [], []
                for layer in range(self.num_layers):
                    hidden, cell = self._diagonal_step("", layer, features, tf.gather(above[layer], j, axis=1), previous[layer])
                    new_previous.append((hidden, cell))
                    new_inputs.append(inputs[layer] * (1.0 - spot) + features[:, None] * spot)
                    new_hiddens.append(hiddens[layer] * (1.0 - spot) + hidden[:, None] * spot)
                    both = hidden + tf.gather(mirrored_above[layer], j, axis=1)
                    features = features + self.residuals[layer](both[:, None, None])[:, 0, 0]
                logits = self._head(features[:, None, None])[:, 0, 0]  # [batch, C, 256]
                values = self.level_values(self._draw(logits, tf.gather(gumbel_row, j, axis=1)))
                return j + 1, row * (1.0 - spot[:, None]) + values[:, None, None, :] * spot[:, None], new_previous, new_inputs, new_hiddens

            previous = [start_of("", layer, i) for layer in range(self.num_layers)]
            empty = [row_zeros] * self.num_layers
            _, row, _, inputs, hiddens = tf.while_loop(lambda j, *_: j < width, pixel,
                                                       [tf.constant(0), row, previous, empty, empty])
            mirrored = [mirrored_row(layer, inputs[layer], mirrored_above[layer], i) for layer in range(self.num_layers)]
            here = tf.reshape(tf.one_hot(i, height), (1, height, 1, 1))
            return i + 1, canvas * (1.0 - here) + row * here, hiddens, mirrored

        canvas = tf.zeros(tf.stack([count, height, width, channels]))
        empty = [row_zeros] * self.num_layers
        _, canvas, _, _ = tf.while_loop(lambda i, *_: i < height, image_row, [tf.constant(0), canvas, empty, empty])
        return levels_of(canvas, self.value_range)

    # ------------------------------------------------------------------------ the contract

    def train_step_flops_per_image(self):
        """Forward and backward (3x) of every convolution, counted per position it runs at."""
        height, width, channels = self.image_shape
        f, four_f = self.filters, 4 * self.filters
        first = 2 * channels * f * (FIRST_HALF * (2 * FIRST_HALF + 1) + FIRST_HALF) * height * width
        if self.recurrence == "row_lstm":
            per_layer = (2 * f * four_f * 2 + 2 * f * four_f * 3) * height * width
        else:  # two directions over the skewed map, H x (W + H - 1) positions each
            per_layer = 2 * (2 * f * four_f + 2 * f * four_f * 2) * height * (width + height - 1)
        per_layer += 2 * f * f * height * width  # residual
        head = (2 * f * f + 2 * f * channels * 256) * height * width
        return 3 * (first + self.num_layers * per_layer + head)

    def get_config(self):
        return {"name": self.name, "image_shape": self.image_shape, "recurrence": self.recurrence,
                "filters": self.filters, "layers": self.num_layers, "seed": self.seed}
