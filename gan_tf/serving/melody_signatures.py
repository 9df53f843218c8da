"""A melody model's serving signatures: chords in, piano rolls out.

What `MidiNet.export_metadata`, `export_archive` and `warmup_requests` return (the model
contract); `gan_tf.serving.export` writes them out. Inputs and outputs:

* `compose` (also `serving_default`): `chords` int32 `[songs, bars]` (chord classes, the
  metadata's `chord_names`: C=0, Cm=1, C#=2, ...), `seed` int64 scalar -> `piano_rolls` float32
  `[songs, bars, 16, 24, 2]` (0/1: roll and onsets, `gan_tf.data.music`), `pitches` int32
  `[songs, bars * 16]` (the MIDI pitch sounding at each sixteenth step, -1 for silence) and
  `onsets` int32 `[songs, bars * 16]` (1 where a note starts). The same seed and chords give the
  same songs as `MidiNet.compose(chords, seed=seed)` in Keras.
* `compose_primed`: the same with `priming_bar` float32 `[songs, 16, 24, 2]`, the bar each song
  follows (0/1 values; e.g. the last bar of a melody to continue).
* `metadata`: no inputs -> `bar_shape`, `num_chords`, `max_songs`, `max_bars`, `metadata_json`.

Bad input is rejected with INVALID_ARGUMENT naming it: chords of a rank other than 2, an empty
request or more than `MAX_SONGS` songs or `MAX_BARS` bars, a chord id outside 0..23, a priming bar
of another shape.
"""

import json

import keras
import numpy as np
import tensorflow as tf

from gan_tf.data import music

MAX_SONGS = 64
MAX_BARS = 64


def melody_metadata(model):
    """What a client needs to know about an exported melody model, as a JSON-able dict."""
    return {
        "model": type(model).__name__,
        "image_shape": list(model.image_shape),
        "value_range": list(model.value_range),
        "conditional": True,
        "num_classes": model.num_classes,
        "melody": {
            "steps_per_bar": music.STEPS_PER_BAR,
            "lowest_pitch": music.LOWEST_PITCH,
            "num_pitches": music.NUM_PITCHES,
            "chord_names": list(music.CHORD_NAMES),
            "song_bars": model.song_bars,
            "previous_bar": model.previous_bar,
            "max_songs": MAX_SONGS,
            "max_bars": MAX_BARS,
        },
        "signatures": ["serving_default", "compose", "compose_primed", "metadata"],
        "truncation_input": False,
    }


def validated_chords(chords, num_classes):
    """`chords` after checks of rank, size and range."""
    rank_ok = tf.equal(tf.rank(chords), 2)
    dims = tf.concat([tf.shape(chords), tf.ones([2], tf.int32)], axis=0)[:2]

    def given_rank(condition):
        return tf.logical_or(tf.logical_not(rank_ok), condition)

    checks = [
        tf.debugging.Assert(rank_ok, ["chords must be int32 [songs, bars]; received rank", tf.rank(chords)]),
        tf.debugging.Assert(given_rank(tf.logical_and(dims[0] >= 1, dims[0] <= MAX_SONGS)),
                            [f"chords must hold 1 to {MAX_SONGS} songs per request; received", dims[0]]),
        tf.debugging.Assert(given_rank(tf.logical_and(dims[1] >= 1, dims[1] <= MAX_BARS)),
                            [f"chords must hold 1 to {MAX_BARS} bars per song; received", dims[1]]),
        tf.debugging.Assert(tf.reduce_all((chords >= 0) & (chords < num_classes)),
                            [f"chords must be chord classes 0..{num_classes - 1}; received values from",
                             tf.reduce_min(chords), "to", tf.reduce_max(chords)]),
    ]
    with tf.control_dependencies(checks):
        return tf.ensure_shape(tf.reshape(chords, tf.shape(chords)[:2]), [None, None])


def validated_primers(priming_bar, songs, bar_shape):
    expected = ", ".join(str(d) for d in bar_shape)
    shape_ok = tf.logical_and(tf.equal(tf.rank(priming_bar), 4),
                              tf.reduce_all(tf.equal(tf.shape(priming_bar), tf.concat([[songs], bar_shape], 0))))
    check = tf.debugging.Assert(shape_ok, [f"priming_bar must be float32 [songs, {expected}] (one bar per song of "
                                           "chords); received shape", tf.shape(priming_bar)])
    with tf.control_dependencies([check]):
        return tf.ensure_shape(tf.reshape(priming_bar, [-1, *bar_shape]), [None, *bar_shape])


def _outputs(bars):
    songs = tf.shape(bars)[0]
    steps = tf.reshape(bars, [songs, -1, bars.shape[-2], 2])  # [songs, bars * 16, pitches, 2]
    sounding = tf.reduce_max(steps[..., 0], axis=-1) > 0.5
    pitches = tf.where(sounding, tf.argmax(steps[..., 0], axis=-1, output_type=tf.int32) + music.LOWEST_PITCH, -1)
    onsets = tf.cast(tf.reduce_max(steps[..., 1], axis=-1) > 0.5, tf.int32)
    return {"piano_rolls": bars, "pitches": pitches, "onsets": onsets}


def _noise(chords, latent_dim, seed):
    key = tf.stack([tf.cast(tf.math.floormod(seed, 2**31), tf.int32), tf.constant(0, tf.int32)])
    shape = tf.concat([tf.shape(chords), [latent_dim]], axis=0)
    return tf.random.stateless_normal(shape, seed=key)


def build_export_archive(model, metadata):
    """A `keras.export.ExportArchive` with `compose`, `compose_primed`, `serving_default`, `metadata`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    bar_shape = list(model.image_shape)
    meta_json = json.dumps(metadata, sort_keys=True)
    chords_spec = tf.TensorSpec(None, tf.int32, name="chords")  # any rank: a wrong one gets its own message
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    primer_spec = tf.TensorSpec(None, tf.float32, name="priming_bar")

    def compose(chords, seed):
        chords = validated_chords(chords, model.num_classes)
        primers = tf.zeros(tf.concat([tf.shape(chords)[:1], bar_shape], 0))
        return _outputs(model.compose_bars(chords, _noise(chords, model.latent_dim, seed), primers))

    def compose_primed(chords, priming_bar, seed):
        chords = validated_chords(chords, model.num_classes)
        primers = validated_primers(priming_bar, tf.shape(chords)[0], bar_shape)
        return _outputs(model.compose_bars(chords, _noise(chords, model.latent_dim, seed), primers))

    def metadata_tensors():
        return {"bar_shape": tf.constant(bar_shape, tf.int32), "num_chords": tf.constant(model.num_classes, tf.int32),
                "max_songs": tf.constant(MAX_SONGS, tf.int32), "max_bars": tf.constant(MAX_BARS, tf.int32),
                "metadata_json": tf.constant(meta_json)}

    archive.add_endpoint("compose", compose, input_signature=[chords_spec, seed_spec])
    archive.add_endpoint("serving_default", compose, input_signature=[chords_spec, seed_spec])
    archive.add_endpoint("compose_primed", compose_primed, input_signature=[chords_spec, primer_spec, seed_spec])
    archive.add_endpoint("metadata", metadata_tensors, input_signature=[])
    return archive


def warmup_inputs(model, shapes=((1, 8), (8, 8))):
    """`[(signature_name, inputs)]` running both compose signatures at each `(songs, bars)`."""
    requests = []
    for songs, bars in shapes:
        chords = np.zeros((songs, bars), np.int32)
        requests.append(("compose", {"chords": chords, "seed": np.int64(0)}))
        requests.append(("compose_primed", {"chords": chords, "seed": np.int64(0),
                                            "priming_bar": np.zeros((songs, *model.image_shape), np.float32)}))
    return requests
