"""MidiNet: a convolutional GAN that writes a melody bar by bar, over chords, after the previous bar.

Reference:
    Yang, Chou & Yang 2017, "MidiNet: A Convolutional Generative Adversarial Network for
    Symbolic-domain Music Generation", https://arxiv.org/abs/1703.10847 (section 3; the
    authors' TensorFlow code is RichardYang40148/MidiNet, `v1/model.py`, whose layer sizes,
    feature-matching weights and two G updates per D update are the defaults here).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from gan_tf.data import music
from gan_tf.models.generative import GenerativeModel, OptimizersByRole, Samples
from gan_tf.models.multi_worker import MultiWorkerWorkarounds
from gan_tf.nn import losses
from gan_tf.nn.layers import ConcatConditionPlanes
from gan_tf.nn.noise import replica_slice
from gan_tf.nn.profiling import forward_flops_per_example
from gan_tf.serving import melody_signatures

CHORD_DIM = 13
# The progression's pitch-class profile appended to the chord when `progression=True`.
PROFILE_DIM = 12
# The chord progression a model without its data's held-out songs previews: I V vi IV I IV V I.
DEFAULT_PROGRESSION = ("C", "G", "Am", "F", "C", "F", "G", "C")


def conditioner_network(bar_shape, width=16):
    """MidiNet's conditioner CNN: the previous bar `[16, P, 2]` -> feature maps at time resolutions
    16, 8, 4 and 2 (`[t, 1, width]`), each appended to the generator layer of the same size."""
    bar = keras.Input(bar_shape, name="previous_bar")
    x = layers.Conv2D(width, (1, bar_shape[1]), name="prev_conv0")(bar)  # every pitch at once
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(name="prev_bn0")(x))
    maps = [x]
    for index in range(1, 4):
        x = layers.Conv2D(width, (2, 1), strides=(2, 1), name=f"prev_conv{index}")(x)
        x = layers.LeakyReLU(0.2)(layers.BatchNormalization(name=f"prev_bn{index}")(x))
        maps.append(x)
    return keras.Model(bar, maps, name="conditioner")


def midinet_generator(latent_dim, bar_shape, width=64, conditioner_width=16, condition_dim=CHORD_DIM):
    """G: `[z, chord (13, or 25 with the progression), previous bar]` -> a bar `[16, P, 2]` in
    [0, 1] (sigmoid).

    z and the chord through Dense 1024 and Dense `2 * 2 width`, reshaped to 2 steps; three
    transposed convolutions (2x1, stride 2) up to 16 steps, the chord (and the conditioner's map of
    the same length) appended before each; a last transposed convolution (1 x P) spreads each step
    over the pitches. Batch norm and ReLU after every layer but the last.
    """
    z = keras.Input((latent_dim,), name="z")
    chord = keras.Input((condition_dim,), name="chord")
    previous = keras.Input(bar_shape, name="previous_bar")
    prev_maps = conditioner_network(bar_shape, conditioner_width)(previous)
    x = layers.Concatenate()([z, chord])
    x = layers.ReLU()(layers.BatchNormalization(name="g_bn0")(layers.Dense(1024, name="g_dense0")(x)))
    x = layers.Concatenate()([x, chord])
    x = layers.ReLU()(layers.BatchNormalization(name="g_bn1")(layers.Dense(2 * 2 * width, name="g_dense1")(x)))
    x = layers.Reshape((2, 1, 2 * width))(x)
    for index, prev_map in enumerate(reversed(prev_maps[1:])):  # lengths 2, 4, 8
        x = layers.Concatenate()([ConcatConditionPlanes()([x, chord]), prev_map])
        x = layers.Conv2DTranspose(2 * width, (2, 1), strides=(2, 1), name=f"g_deconv{index}")(x)
        x = layers.ReLU()(layers.BatchNormalization(name=f"g_bn{index + 2}")(x))
    x = layers.Concatenate()([ConcatConditionPlanes()([x, chord]), prev_maps[0]])
    logits = layers.Conv2DTranspose(bar_shape[2], (1, bar_shape[1]), strides=(1, bar_shape[1]), name="g_out")(x)
    bar = layers.Activation("sigmoid", dtype="float32")(logits)
    return keras.Model([z, chord, previous], bar, name="generator")


def midinet_discriminator(bar_shape, width=64, dense_width=1024, condition_dim=CHORD_DIM):
    """D: `[bar, chord]` -> `[logit [B, 1], first-layer features [B, 8, 1, C + 13]]` (the chord
    condition is 13 values, or 25 with the progression).

    The chord is appended to the bar and to each layer; a (2 x P, stride 2) convolution reads two
    steps of every pitch (its LeakyReLU output is what G's feature matching compares), a (4 x 1,
    stride 2) one with batch norm, Dense 1024 with batch norm, Dense 1.
    """
    bar = keras.Input(bar_shape, name="bar")
    chord = keras.Input((condition_dim,), name="chord")
    x = ConcatConditionPlanes()([bar, chord])
    features = layers.LeakyReLU(0.2)(layers.Conv2D(bar_shape[2] + CHORD_DIM, (2, bar_shape[1]), strides=(2, 1),
                                                   name="d_conv0")(x))
    x = ConcatConditionPlanes()([features, chord])
    x = layers.Conv2D(width + CHORD_DIM, (4, 1), strides=(2, 1), name="d_conv1")(x)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(name="d_bn1")(x))
    x = layers.Concatenate()([layers.Flatten()(x), chord])
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(name="d_bn2")(layers.Dense(dense_width, name="d_dense")(x)))
    x = layers.Concatenate()([x, chord])
    logit = layers.Dense(1, dtype="float32", name="d_logit")(x)
    return keras.Model([bar, chord], [logit, features], name="discriminator")


def chord_condition(chords):
    """float `[..., 13]` of int chord classes, in TensorFlow (as `music.chord_vectors`)."""
    chords = tf.cast(chords, tf.int32)
    return tf.concat([tf.one_hot(chords // 2, 12), tf.cast(chords % 2, tf.float32)[..., None]], axis=-1)


def progression_profile(song_chords):
    """float `[..., 12]`: the share of a progression's chord tones on each pitch class, of int
    chord classes `song_chords` `[..., bars]` (-1: no chord, left out). The key the chords imply,
    which a single chord leaves open (G major is the tonic of G and the dominant of C)."""
    song_chords = tf.cast(song_chords, tf.int32)
    present = tf.cast(song_chords >= 0, tf.float32)
    chords = tf.maximum(song_chords, 0)
    roots, minor = chords // 2, chords % 2
    tones = tf.stack([roots, (roots + 4 - minor) % 12, (roots + 7) % 12], axis=-1)  # [..., bars, 3]
    counts = tf.reduce_sum(tf.one_hot(tones, 12) * present[..., None, None], axis=[-3, -2])
    return counts / tf.maximum(tf.reduce_sum(counts, axis=-1, keepdims=True), 1.0)


def song_key(profile):
    """int `[...]`: the major key (its tonic's pitch class; a minor key shares its relative
    major's scale) whose scale holds the most of a progression's pitch-class `profile` `[..., 12]`."""
    in_scale = np.zeros((12, 12), np.float32)  # [pitch class, key]
    for key in range(12):
        in_scale[[(key + step) % 12 for step in music.MAJOR_SCALE], key] = 1.0
    return tf.argmax(tf.tensordot(profile, tf.constant(in_scale), axes=1), axis=-1, output_type=tf.int32)


def key_relative_pitch_classes(bars, keys):
    """float `[B, 12]`: each bar's share of sounding (piano-roll) mass on each pitch class,
    counted from its song's key `keys` `[B]` (0: the tonic, 11: the leading tone), of bar
    probabilities or 0/1 bars `[B, 16, P, 2]` whose pitches start at a C."""
    roll = tf.reduce_sum(bars[..., 0], axis=1)  # [B, P]
    octaves = roll.shape[-1] // 12
    classes = tf.reduce_sum(tf.reshape(roll[:, : octaves * 12], (-1, octaves, 12)), axis=1)
    shares = classes / tf.maximum(tf.reduce_sum(classes, axis=-1, keepdims=True), 1e-6)
    return tf.gather(shares, (tf.range(12)[None, :] + keys[:, None]) % 12, batch_dims=1)


def melody_bars(probabilities, previous):
    """0/1 bars `[B, 16, P, 2]` of generated `probabilities`, read by `music.decode_bars`'s rule:
    the loudest pitch per step if above 0.5, a new note where the pitch changes (from the last
    step of the `previous` 0/1 bars too), after silence, or where its onset value exceeds 0.5."""
    roll, onset_values = probabilities[..., 0], probabilities[..., 1]
    num_pitches = tf.shape(roll)[-1]
    loudest = tf.argmax(roll, axis=-1, output_type=tf.int32)
    sounding = tf.reduce_max(roll, axis=-1) > 0.5
    pitch = tf.where(sounding, loudest, -1)  # [B, 16]
    last_roll = previous[:, -1, :, 0]
    last_pitch = tf.where(tf.reduce_max(last_roll, axis=-1) > 0.5, tf.argmax(last_roll, axis=-1, output_type=tf.int32), -1)
    before = tf.concat([last_pitch[:, None], pitch[:, :-1]], axis=1)
    marked = tf.gather(onset_values, loudest, axis=2, batch_dims=2) > 0.5
    onsets = sounding & (tf.not_equal(pitch, before) | marked)
    roll_bits = tf.one_hot(loudest, num_pitches) * tf.cast(sounding, tf.float32)[..., None]
    onset_bits = roll_bits * tf.cast(onsets, tf.float32)[..., None]
    return tf.stack([roll_bits, onset_bits], axis=-1)


@keras.saving.register_keras_serializable(package="gan_tf")
class MidiNet(OptimizersByRole, MultiWorkerWorkarounds, GenerativeModel):
    """MidiNet: G writes a bar from noise, its chord (1-D condition) and the previous bar (2-D
    condition, through the conditioner CNN); D judges bars given their chords. By default both also
    see the song's chord progression (`progression`), which tells the key.

    `train_step` per batch `((bars, previous_bars[, song_chords]), chords)` (c: the chord, with
    the profile of `song_chords` when given, else of the chord alone): draws z; one D update on
    `BCE(D(x, c), real_label) + BCE(D(G(z, c, x_prev), c), 0)`; `generator_steps` G updates on
    the same z, each on `BCE(D(G(.), c), 1) + feature_weight * ||mean f(x) - mean f(G(.))||^2 / 2
    + mean_weight * ||mean x - mean G(.)||^2 / 2 + key_weight * ||mean k(x) - mean k(G(.))||^2 / 2`
    (f: D's first layer; k: the key-relative pitch-class shares; `losses.feature_matching_loss`);
    then the trackers `d_loss`, `g_loss`, `g_adversarial`,
    `feature_matching`, `d_real`, `d_fake`.

    Songs are written bar by bar (`compose`): each bar from fresh noise, its chord and the bar
    written before it (read as a melody, `melody_bars`), the first after silence or a priming bar.
    Bars use `gan_tf.data.music`'s representation (`[16, 24, 2]`: piano roll and onsets, C4-B5); chords
    are the data's labels (24 classes). `sample` and `preview` without chords use the held-out
    songs' chord progressions (the model keeps its data's `MelodyExamples`, not saved), or
    `DEFAULT_PROGRESSION`.

    Args:
        image_shape: the bar shape, `gan_tf.data.music.BAR_SHAPE`.
        num_classes: chord classes (24).
        latent_dim: size of z (100).
        width: G's and D's base channels (64; G's layers have twice as many).
        previous_bar: whether G sees the previous bar (False: chords only, the paper's "model 1").
        progression: whether G and D also see the song's chord progression, as its pitch-class
            profile (`progression_profile`) appended to the chord: the key, which one chord leaves
            open, so that the bars of a song keep to one scale. The paper's condition is the
            chord alone (False). Training bars see the chords of their 8-bar song
            (`melody_data.song_windows`), `compose` the whole progression it is given.
        feature_weight: weight of feature matching on D's first layer (0.1).
        mean_weight: weight of feature matching on the bars themselves (0.01).
        key_weight: weight of feature matching on the bars' pitch-class shares counted from
            their song's key (`key_relative_pitch_classes`; the key: the major scale that holds
            most of the song's chord tones, `song_key`): G is pulled to put as much of its
            melody on the scale, and on each of its degrees, as the real bars do (0: off). 30
            by measurement (docs/results/melodies.md): at 5,000 D updates, seeds 0 and 1, scale
            consistency 0.954 and 0.952 against 0.832 and 0.843 without (real bars 0.971), chord
            tones 0.492 and 0.574 against 0.435 and 0.452 (real 0.505).
        generator_steps: G updates per D update (2, as the authors' code).
        real_label: D's target for real bars (0.9: one-sided label smoothing).
        song_bars: bars per previewed song (8).
        seed: seed of the noise stream.

    Example:
        >>> source = open_source("bach_chorales")
        >>> model = MidiNet.from_data(source.info, seed=0)
        >>> model.compile_optimizers({})  # Adam(2e-4, beta_1=0.5) for D and G
        >>> model.fit(source.dataset(72, value_range=(0, 1), seed=0, repeat=True), epochs=5, steps_per_epoch=500)
        >>> bars = model.compose([music.parse_chords("C,G,Am,F")], seed=0)  # [1, 4, 16, 24, 2]
    """

    value_range = (0.0, 1.0)
    default_batch_size = 72
    needs_labels = True
    modality = "melody"

    def __init__(self, image_shape=music.BAR_SHAPE, num_classes=music.NUM_CHORDS, latent_dim=100, width=64,
                 previous_bar=True, progression=True, feature_weight=0.1, mean_weight=0.01, key_weight=30.0,
                 generator_steps=2, real_label=0.9, song_bars=8, seed=None, **kwargs):
        super().__init__(**kwargs)
        if tuple(image_shape) != music.BAR_SHAPE:
            raise ValueError(f"MidiNet writes bars of shape {music.BAR_SHAPE} (16 steps, C4-B5, roll and onsets). "
                             f"Received: image_shape={tuple(image_shape)}")
        if num_classes != music.NUM_CHORDS:
            raise ValueError(f"MidiNet's chords are the {music.NUM_CHORDS} major and minor triads. Received: "
                             f"num_classes={num_classes}")
        for name, value in (("latent_dim", latent_dim), ("width", width), ("generator_steps", generator_steps),
                            ("song_bars", song_bars)):
            if int(value) < 1:
                raise ValueError(f"`{name}` must be at least 1. Received: {name}={value}")
        for name, value in (("feature_weight", feature_weight), ("mean_weight", mean_weight), ("key_weight", key_weight)):
            if value < 0:
                raise ValueError(f"`{name}` must be at least 0. Received: {name}={value}")
        if not 0.0 < real_label <= 1.0:
            raise ValueError(f"`real_label` must be in (0, 1]. Received: real_label={real_label}")
        self.image_shape = music.BAR_SHAPE
        self.num_classes = music.NUM_CHORDS
        self.latent_dim = int(latent_dim)
        self.width = int(width)
        self.previous_bar = bool(previous_bar)
        self.progression = bool(progression)
        self.feature_weight = float(feature_weight)
        self.mean_weight = float(mean_weight)
        self.key_weight = float(key_weight)
        self.generator_steps = int(generator_steps)
        self.real_label = float(real_label)
        self.song_bars = int(song_bars)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        condition_dim = CHORD_DIM + (PROFILE_DIM if self.progression else 0)
        self.generator = midinet_generator(self.latent_dim, self.image_shape, self.width, condition_dim=condition_dim)
        self.discriminator = midinet_discriminator(self.image_shape, self.width, condition_dim=condition_dim)
        self.examples = None
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.g_adversarial_tracker = keras.metrics.Mean(name="g_adversarial")
        self.feature_matching_tracker = keras.metrics.Mean(name="feature_matching")
        self.real_probability_tracker = keras.metrics.Mean(name="d_real")
        self.fake_probability_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True

    @classmethod
    def from_data(cls, info, **model_args):
        """The model for melody data `info` (bach_chorales, midi:PATH); ValueError for images."""
        cls.check_modality(info)
        model = cls(image_shape=tuple(info.image_shape), num_classes=info.num_classes, **model_args)
        model.examples = info.examples
        return model

    # Saved before `progression` existed: conditioned on the chord alone; before `key_weight`: no key term.
    older_config_defaults = {"progression": False, "key_weight": 0.0}

    @classmethod
    def from_config(cls, config):
        return cls(**{**cls.older_config_defaults, **config})

    def condition(self, chords, song_chords=None):
        """float `[..., 13]` (chord) or `[..., 25]` (chord, then the profile of `song_chords`
        `[..., bars]`, default the chord alone) of int chord classes `chords` `[...]`: what G and D
        are conditioned on."""
        condition = chord_condition(chords)
        if not self.progression:
            return condition
        if song_chords is None:
            song_chords = tf.cast(chords, tf.int32)[..., None]
        return tf.concat([condition, progression_profile(song_chords)], axis=-1)

    def optimizer_networks(self):
        return {"discriminator": [self.discriminator], "generator": [self.generator]}

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.g_adversarial_tracker, self.feature_matching_tracker,
                self.real_probability_tracker, self.fake_probability_tracker]

    # --------------------------------------------------------------------------------- train

    def train_step(self, data):
        (bars, previous, *song_chords), chords, _ = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = ops.shape(bars)[0]
        song_chords = song_chords[0] if song_chords else tf.cast(chords, tf.int32)[..., None]
        condition = self.condition(chords, song_chords)
        keys = song_key(progression_profile(song_chords))
        if not self.previous_bar:
            previous = ops.zeros_like(previous)
        z = replica_slice(lambda size: keras.random.normal((size, self.latent_dim), seed=self.seed_generator), batch_size)

        with tf.GradientTape() as d_tape:
            fakes = self.generator([z, condition, previous], training=True)
            real_logits, real_features = self.discriminator([bars, condition], training=True)
            fake_logits, _ = self.discriminator([fakes, condition], training=True)
            d_losses = losses.minimax_discriminator_loss(real_logits, fake_logits, self.real_label)
            d_loss = tf.nn.compute_average_loss(d_losses)
        self.apply_gradients("discriminator", d_loss, d_tape, [self.discriminator])

        real_features = ops.stop_gradient(real_features)
        for _ in range(self.generator_steps):
            g_losses, adversarial, matching = self.generator_step(z, condition, previous, bars, real_features, keys)

        self.d_loss_tracker.update_state(d_losses)
        self.g_loss_tracker.update_state(g_losses)
        self.g_adversarial_tracker.update_state(adversarial)
        self.feature_matching_tracker.update_state(matching)
        self.real_probability_tracker.update_state(ops.sigmoid(real_logits))
        self.fake_probability_tracker.update_state(ops.sigmoid(fake_logits))
        return self.train_step_logs()

    def generator_step(self, z, condition, previous, bars, real_features, keys):
        """One G update; returns its per-example loss, adversarial term and (scalar) matching term."""
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            fakes = self.generator([z, condition, previous], training=True)
            fake_logits, fake_features = self.discriminator([fakes, condition], training=True)
            adversarial = losses.minimax_generator_loss(fake_logits)
            matching = (self.feature_weight * losses.feature_matching_loss(real_features, fake_features)
                        + self.mean_weight * losses.feature_matching_loss(bars, fakes))
            if self.key_weight:
                matching += self.key_weight * losses.feature_matching_loss(
                    key_relative_pitch_classes(bars, keys), key_relative_pitch_classes(fakes, keys))
            g_losses = adversarial + matching
            # The matching terms are of this replica's batch: each replica adds its share.
            g_loss = tf.nn.compute_average_loss(adversarial) + matching / replicas
        self.apply_gradients("generator", g_loss, tape, [self.generator])
        return g_losses, adversarial, matching

    # ------------------------------------------------------------------------------ sampling

    def call(self, inputs, training=False):
        """`G([z, chord vectors, previous bars])`: bar probabilities."""
        return self.generator(inputs, training=training)

    @tf.function(reduce_retracing=True)
    def compose_bars(self, chords, noise, primers):
        """0/1 bars `[N, B, 16, P, 2]` of songs over int `chords` `[N, B]` with `noise` `[N, B, z]`,
        each bar after the one before it (the first after `primers` `[N, 16, P, 2]`); with
        `progression`, every bar of a song also sees its whole progression."""
        song_chords = tf.repeat(tf.cast(chords, tf.int32)[:, None, :], tf.shape(chords)[1], axis=1)
        condition = self.condition(chords, song_chords)

        def next_bar(previous, inputs):
            z, chord = inputs
            shown = previous if self.previous_bar else tf.zeros_like(previous)
            return melody_bars(self.generator([z, chord, shown], training=False), previous)

        bars = tf.scan(next_bar, (tf.transpose(noise, [1, 0, 2]), tf.transpose(condition, [1, 0, 2])),
                       initializer=tf.cast(primers, tf.float32))
        return tf.transpose(bars, [1, 0, 2, 3, 4])

    def compose(self, chords, seed=None, primers=None):
        """Songs over `chords` (int `[N, B]` chord classes): 0/1 bars `[N, B, 16, 24, 2]`.

        `seed` makes them reproducible: the noise is `stateless_normal([N, B, z], [seed, 0])`, as
        the export's signatures draw it; `primers` (0/1 `[N, 16, 24, 2]`) are the bars before the
        songs (default: silence)."""
        chords = np.asarray(chords, np.int32)
        if chords.ndim != 2 or chords.size == 0 or chords.min() < 0 or chords.max() >= self.num_classes:
            raise ValueError(f"chords must be int [songs, bars] of chord classes 0..{self.num_classes - 1}. "
                             f"Received: shape {chords.shape}")
        if primers is None:
            primers = np.zeros((len(chords), *self.image_shape), np.float32)
        primers = np.asarray(primers, np.float32)
        if primers.shape != (len(chords), *self.image_shape):
            raise ValueError(f"primers must be [{len(chords)}, {', '.join(map(str, self.image_shape))}]. "
                             f"Received: {primers.shape}")
        noise = song_noise(chords.shape, self.latent_dim, seed)
        return keras.ops.convert_to_numpy(self.compose_bars(tf.constant(chords), noise, tf.constant(primers)))

    def progressions(self, num_songs, song_bars):
        """int `[num_songs, song_bars]`: the held-out songs' chords (cycled), else `DEFAULT_PROGRESSION`."""
        if self.examples is not None:
            source = self.examples.chords
        else:
            source = np.asarray([music.parse_chords(",".join(DEFAULT_PROGRESSION))], np.int32)
        rows = np.resize(np.arange(len(source)), num_songs)
        return np.stack([np.resize(source[row], song_bars) for row in rows]).astype(np.int32)

    def sample(self, num_samples, seed=None, conditions=None):
        """`Samples(bars, {"labels": chords})`: `num_samples` bars in songs of `song_bars`.

        `conditions`: `{"labels": chord classes [N]}`, bar k of each song over chord k (default:
        the held-out progressions); with `"previous"` (0/1 or uint8 bars `[N, 16, 24, 2]`) each bar
        is written after its own given previous bar instead."""
        conditions = dict(conditions or {})
        unknown = set(conditions) - {"labels", "previous"}
        if unknown:
            raise ValueError(f"MidiNet takes chords (labels) and previous bars. Received: {sorted(unknown)}")
        songs = -(-num_samples // self.song_bars)
        if conditions.get("previous") is not None:
            previous = np.asarray(conditions["previous"], np.float32)
            previous = previous / 255.0 if previous.max(initial=0) > 1 else previous
            labels = conditions.get("labels")
            chords = np.resize(np.asarray(self.progressions(1, num_samples)[0] if labels is None else labels, np.int32),
                               num_samples)
            bars = self.compose(chords[:, None], seed, primers=previous[:num_samples])[:, 0]
            return Samples(bars, {"labels": chords})
        if conditions.get("labels") is not None:
            chords = np.resize(np.asarray(conditions["labels"], np.int32), songs * self.song_bars)
            chords = chords.reshape(songs, self.song_bars)
        else:
            chords = self.progressions(songs, self.song_bars)
        bars = self.compose(chords, seed).reshape(-1, *self.image_shape)[:num_samples]
        return Samples(bars, {"labels": chords.reshape(-1)[:num_samples]})

    def preview(self, rows, columns, seed):
        """`rows` songs of `columns` bars over the held-out progressions, as piano-roll pictures
        (`music.display_bars`: `[rows * columns, 24, 16, 1]`); each grid row reads as one song."""
        bars = self.compose(self.progressions(rows, columns), seed).reshape(-1, *self.image_shape)
        return music.display_bars(bars)

    def preview_audio(self, seed, sample_rate=16000):
        """`(audio, sample_rate)`: the first preview song with its chords, synthesised."""
        chords = self.progressions(1, self.song_bars)
        bars = self.compose(chords, seed)[0]
        return music.synthesize(music.decode_bars(bars), chords[0], sample_rate=sample_rate), sample_rate

    # -------------------------------------------------------------------------------- export

    def export_metadata(self):
        return melody_signatures.melody_metadata(self)

    def export_archive(self, metadata):
        return melody_signatures.build_export_archive(self, metadata)

    def warmup_requests(self):
        return melody_signatures.warmup_inputs(self)

    def train_step_flops_per_image(self):
        """D forward and backward on a real and a fake bar (6 F_D); per G step, G forward and
        backward (3 F_G) and D forward plus input-gradient (2 F_D); G's D-step forward (F_G)."""
        g, d = forward_flops_per_example(self.generator), forward_flops_per_example(self.discriminator)
        return g + 6 * d + self.generator_steps * (3 * g + 2 * d)

    def get_config(self):
        return {"name": self.name, "image_shape": list(self.image_shape), "num_classes": self.num_classes,
                "latent_dim": self.latent_dim, "width": self.width, "previous_bar": self.previous_bar,
                "progression": self.progression,
                "feature_weight": self.feature_weight, "mean_weight": self.mean_weight, "key_weight": self.key_weight,
                "generator_steps": self.generator_steps, "real_label": self.real_label, "song_bars": self.song_bars,
                "seed": self.seed}


def song_noise(shape, latent_dim, seed=None):
    """float32 `[N, B, latent_dim]` noise of songs: `stateless_normal` keyed `[seed, 0]` (random
    when `seed` is None), what `MidiNet.compose` and the export's seeded signatures draw."""
    if seed is None:
        seed = np.random.randint(0, 2**31 - 1)
    key = tf.constant([int(seed) % 2**31, 0], tf.int32)
    return tf.random.stateless_normal([int(shape[0]), int(shape[1]), int(latent_dim)], seed=key)
