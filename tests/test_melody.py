"""Melodies: the bar and chord encoding, the chorale and MIDI sources, the metrics, MidiNet and its tools."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from gan_tf.nn import losses
from gan_tf.data import melodies as melody_data
from gan_tf.metrics import melody_metrics
from gan_tf.data import music
from gan_tf.data import DatasetError
from gan_tf.models.midinet import MidiNet, conditioner_network, melody_bars, midinet_discriminator, midinet_generator
from gan_tf.data import open_source

N = music.Note


@pytest.fixture(scope="module")
def chorales():
    """The first 40 chorales of music21's corpus, encoded (the whole corpus takes a minute)."""
    return melody_data.load_chorales(limit=40)


@pytest.fixture(scope="module")
def chorale_cache(tmp_path_factory, chorales):
    """A cache directory whose `bach_chorales` are those 40, for runs that open the dataset by name."""
    directory = tmp_path_factory.mktemp("cache")
    np.savez_compressed(melody_data._cache_path(str(directory)), **chorales)
    return str(directory)


# ------------------------------------------------------------------------------ encoding


def test_repeated_notes_rests_and_a_note_over_the_bar_line_round_trip():
    # Two repeated quarter-note E4s (MidiNet's roll alone would merge them), a rest, then a G4
    # held from the last beat of bar 0 into bar 1, and the top pitch B5.
    notes = [N(64, 0, 4), N(64, 4, 4), N(67, 12, 8), N(83, 20, 1)]
    bars = music.encode_bars(notes, 2)
    assert bars.shape == (2, 16, 24, 2)
    assert bars[0, :8, 4, 0].all() and bars[0, [0, 4], 4, 1].tolist() == [1, 1] and bars[0, 1:4, 4, 1].sum() == 0
    assert not bars[0, 8:12].any()  # the rest
    assert bars[1, :4, 7, 0].all() and not bars[1, :, :, 1][:4].any()  # held over: no onset in bar 1
    assert music.decode_bars(bars) == notes
    with pytest.raises(ValueError, match="outside the melody range"):
        music.encode_bars([N(59, 0, 4)], 1)
    with pytest.raises(ValueError, match="monophonic"):
        music.encode_bars([N(60, 0, 4), N(64, 2, 4)], 1)


def test_a_chorale_excerpt_round_trips_exactly():
    from music21 import corpus

    score = corpus.parse("bach/bwv347")  # 4/4, a one-beat upbeat, melody in range
    bars, chords, shift = melody_data.chorale_piece(score)
    soprano = score.parts[0].flatten().notes
    expected = [N(n.pitch.midi, int(n.offset * 4), int(n.quarterLength * 4)) for n in soprano]
    expected = [note for note in expected if note.start < 4 + 16 * (len(bars) - 1)]  # full bars only
    assert shift == 0 and expected[0] == N(69, 0, 4)  # the upbeat A4
    # Bar 0 is the bar before the first full bar: its last beat holds the upbeat.
    assert music.decode_bars(bars, first_step=4 - 16) == expected
    assert np.array_equal(music.encode_bars(expected, len(bars), first_step=4 - 16), bars)
    # The first full bar's lower voices: F#-C#-F# / E-C#-C# / F#... over F#3, C#3, D3, D#3: F# minor.
    assert music.CHORD_NAMES[chords[1]] == "F#m"


def test_chords_by_hand():
    assert music.estimate_chord({60: 4, 64: 4, 67: 4}) == music.parse_chord("C") == 0
    assert music.estimate_chord({57: 8, 60: 4, 64: 4}, bass_pitch=57) == music.parse_chord("Am") == 19
    # C-E-G-A: C major and A minor both hold three of the tones; the bass A decides.
    assert music.estimate_chord({57: 4, 60: 4, 64: 4, 67: 4}, bass_pitch=45) == 19
    assert music.estimate_chord({57: 4, 60: 4, 64: 4, 67: 4}, bass_pitch=48) == 0
    np.testing.assert_array_equal(music.chord_vectors([19])[0], np.eye(13)[9] + np.eye(13)[12])
    assert [music.CHORD_NAMES[c] for c in music.parse_chords("C, F#m,Bb,ebm")] == ["C", "F#m", "Bb", "Ebm"]
    assert music.CHORD_NAMES[int(music.transpose_chords(19, 3))] == "Cm"
    with pytest.raises(ValueError, match="Not a chord name"):
        music.parse_chord("H7")


def test_training_bars_are_every_transposition_that_fits(chorales):
    train, _ = melody_data.split_pieces(chorales)
    piece_bars, piece_chords = train[0]
    bars, previous, chords, song_chords = melody_data.training_examples([train[0]])
    # By hand: a (bar, previous bar) pair is kept at a shift when both stay inside the 24 rows.
    rows = [np.nonzero(bar[..., 0].any(axis=0))[0] for bar in piece_bars]
    expected = sum(all(0 <= r + shift < 24 for k in (i, i - 1) for r in rows[k])
                   for shift in melody_data.TRANSPOSITIONS for i in range(1, len(piece_bars)))
    assert len(bars) == len(previous) == len(chords) == expected > len(piece_bars)
    assert int(bars[..., 0].sum()) == sum(int(piece_bars[i, ..., 0].sum()) * sum(
        all(0 <= r + shift < 24 for k in (i, i - 1) for r in rows[k]) for shift in melody_data.TRANSPOSITIONS)
        for i in range(1, len(piece_bars)))  # nothing wrapped round or lost
    up_two = (bars == music.transpose_bars(piece_bars[1], 2)).all(axis=(1, 2, 3))
    up_two &= (previous == music.transpose_bars(piece_bars[0], 2)).all(axis=(1, 2, 3))
    assert up_two.any() and chords[np.argmax(up_two)] == music.transpose_chords(piece_chords[1], 2)
    # Bar 1 opens the first song (bars 1..8), transposed with it.
    np.testing.assert_array_equal(song_chords[np.argmax(up_two)], music.transpose_chords(piece_chords[1:9], 2))


def test_song_windows_are_the_songs_held_out_songs_are_cut_into():
    # Bars 1..8 form the first song and bars 9..10 the shorter last one; bar 0 has no window.
    windows = melody_data.song_windows(np.arange(11), song_bars=8)
    assert windows.shape == (10, 8)
    np.testing.assert_array_equal(windows[0], np.arange(1, 9))
    np.testing.assert_array_equal(windows[7], np.arange(1, 9))
    np.testing.assert_array_equal(windows[8], [9, 10, -1, -1, -1, -1, -1, -1])
    np.testing.assert_array_equal(windows[9], windows[8])


def test_the_progression_profile_by_hand():
    from gan_tf.models.midinet import progression_profile

    # C (C E G) and G (G B D): six tones, G twice; Cm alone: C Eb G; -1 is no chord.
    profile = progression_profile(tf.constant([[0, 14, -1], [1, -1, -1]])).numpy()
    expected = np.zeros((2, 12))
    expected[0, [0, 2, 4, 11]] = 1 / 6
    expected[0, 7] = 2 / 6
    expected[1, [0, 3, 7]] = 1 / 3
    np.testing.assert_allclose(profile, expected, atol=1e-6)


def test_the_song_key_and_the_key_relative_pitch_classes_by_hand():
    from gan_tf.models.midinet import key_relative_pitch_classes, progression_profile, song_key

    # C G Am F is all on C major's scale; G D Em C has D's F#: G major.
    profiles = progression_profile(tf.constant([[0, 14, 19, 10], [14, 4, 9, 0]]))
    np.testing.assert_array_equal(song_key(profiles).numpy(), [0, 7])
    # Half a bar on G4 (pitch 7), half on B5 (pitch 23, class 11): from C, classes 7 and 11;
    # from G, the tonic (0) and the third (4). Probabilities count as they sound.
    bar = np.zeros((1, 16, 24, 2), np.float32)
    bar[0, :8, 7, 0] = 1.0
    bar[0, 8:, 23, 0] = 0.5
    shares = key_relative_pitch_classes(tf.constant(np.concatenate([bar, bar])), tf.constant([0, 7])).numpy()
    expected = np.zeros((2, 12))
    expected[0, [7, 11]] = [2 / 3, 1 / 3]
    expected[1, [0, 4]] = [2 / 3, 1 / 3]
    np.testing.assert_allclose(shares, expected, atol=1e-6)


def test_the_chorale_source_batches_and_resumes(chorales):
    source = melody_data.source_from_corpus("bach_chorales", chorales)
    assert source.info.modality == "melody" and source.info.image_shape == (16, 24, 2)
    assert source.info.num_classes == 24 and "skipped" in source.summary and "not in 4/4" in source.summary
    songs = source.info.examples
    assert songs.songs.shape[1:] == (8, 16, 24, 2) and songs.chords.shape == songs.songs.shape[:2]
    batches = list(source.dataset(16, seed=3, repeat=True).take(3))
    (bars, previous, song_chords), chords = batches[0]
    assert bars.shape == (16, 16, 24, 2) and previous.dtype == tf.float32 and chords.dtype == tf.int32
    assert song_chords.shape == (16, 8) and song_chords.dtype == tf.int32
    # Each bar's chord is one of its song's chords.
    assert all(c in row for c, row in zip(chords.numpy(), song_chords.numpy()))
    assert set(np.unique(bars.numpy())) <= {0.0, 1.0}
    resumed = next(iter(source.dataset(16, seed=3, repeat=True, start_batch=2)))
    np.testing.assert_array_equal(resumed[0][0].numpy(), batches[2][0][0].numpy())


def _write_midi_file(path, melody, chords=None, numerator=4):
    import pretty_midi

    midi = music.melody_midi(melody, chords)
    midi.time_signature_changes = [pretty_midi.TimeSignature(numerator, 4, 0.0)]
    midi.write(path)


def test_a_midi_folder_skips_corrupt_empty_and_odd_meter_files(tmp_path):
    melody = [N(72 + (k % 5), 4 * k, 4) for k in range(4 * 12)]  # 12 bars of quarter notes, C5..E5
    for index in range(3):
        _write_midi_file(str(tmp_path / f"song{index}.mid"), melody, [0, 10, 18, 14] * 3)
    _write_midi_file(str(tmp_path / "waltz.mid"), melody, numerator=3)
    (tmp_path / "broken.mid").write_bytes(b"MThd not really")
    _write_midi_file(str(tmp_path / "empty.mid"), [])
    source = open_source(f"midi:{tmp_path}")
    assert source.info.modality == "melody" and "3 pieces, 3 skipped" in source.summary
    arrays = melody_data.load_midi_folder(str(tmp_path))
    reasons = dict((name, why) for name, why in arrays["skipped"])
    assert "parse" in reasons["broken.mid"] and "no notes" in reasons["empty.mid"] and "3/4" in reasons["waltz.mid"]
    bars = arrays["bars"][: arrays["lengths"][0]]
    assert music.decode_bars(bars[1:]) == melody  # the melody track, in range, unmoved
    assert [music.CHORD_NAMES[c] for c in arrays["chords"][1:5]] == ["C", "F", "A", "G"]
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DatasetError, match="no .mid or .midi files"):
        open_source(f"midi:{tmp_path / 'nothing'}")


# ------------------------------------------------------------------------------ metrics


def test_melody_metrics_by_hand():
    c_major = music.encode_bars([N(60, 0, 4), N(64, 4, 4), N(67, 8, 4), N(72, 12, 4)], 1)[0]
    stray = music.encode_bars([N(61, 0, 8), N(66, 8, 8)], 1)[0]  # C#, F#: outside C major's chord
    empty = np.zeros_like(c_major)
    corpus = melody_metrics.corpus_statistics(np.stack([c_major]), [0], previous=np.stack([empty]))
    found = melody_metrics.melody_metrics(np.stack([c_major, empty, stray, c_major]), [0, 0, 0, 0], corpus, 2)
    assert found["empty_bar_rate"] == 0.25
    assert found["pitch_classes_per_bar"] == pytest.approx((3 + 2 + 3) / 3)
    assert found["chord_tone_ratio"] == pytest.approx(8 / 10)  # 4 + 4 of 10 notes are C, E or G
    assert found["scale_consistency"] == pytest.approx((1.0 + 5 / 6) / 2)  # song 2: G major holds F#, not C#
    assert found["copy_rate"] == pytest.approx(2 / 3)
    # Phrases: (c_major, empty) has a silent second bar; (stray, c_major) is not the corpus's (empty, c_major).
    assert found["phrase_copy_rate"] == 0.0
    again = melody_metrics.melody_metrics(np.stack([empty, c_major]), [0, 0], corpus, 2)
    assert again["phrase_copy_rate"] == 1.0 and again["copy_rate"] == 1.0
    # Lengths: eight quarters and two halves against the corpus's four quarters.
    assert found["note_length_distance"] == pytest.approx(0.2)
    # Pitch classes above the root C: {0: 4, 4: 2, 7: 2, 1: 1, 6: 1} / 10 vs {0: .5, 4: .25, 7: .25}.
    assert found["pitch_class_distance"] == pytest.approx(0.5 * (0.1 + 0.05 + 0.05 + 0.1 + 0.1))
    random = melody_metrics.random_bars(40, seed=0)
    assert set(np.unique(random)) == {0, 1} and random[:, 0, :, 1].sum() == 40  # a note at every bar's start
    assert melody_metrics.binarized(c_major[None] * np.uint8(255)).tolist() == c_major[None].tolist()


def test_feature_matching_loss_by_hand():
    real = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)  # mean (2, 3)
    fake = np.array([[0.0, 0.0], [2.0, 2.0]], np.float32)  # mean (1, 1)
    assert float(losses.feature_matching_loss(real, fake)) == pytest.approx(0.5 * (1 + 4))


# ------------------------------------------------------------------------------ MidiNet


def test_conditioner_generator_and_discriminator_shapes():
    maps = conditioner_network((16, 24, 2))(np.zeros((3, 16, 24, 2), np.float32))
    assert [tuple(m.shape) for m in maps] == [(3, 16, 1, 16), (3, 8, 1, 16), (3, 4, 1, 16), (3, 2, 1, 16)]
    generator = midinet_generator(8, (16, 24, 2), width=4)
    bars = generator([np.zeros((3, 8)), np.zeros((3, 13)), np.zeros((3, 16, 24, 2))])
    assert bars.shape == (3, 16, 24, 2) and float(keras.ops.min(bars)) >= 0 and float(keras.ops.max(bars)) <= 1
    logit, features = midinet_discriminator((16, 24, 2), width=4, dense_width=8)([bars, tf.zeros((3, 13))])
    assert logit.shape == (3, 1) and features.shape == (3, 8, 1, 15)


def test_generated_probabilities_are_read_as_melodies_like_decode_bars():
    rng = np.random.default_rng(1)
    probabilities = rng.random((6, 16, 24, 2)).astype(np.float32) ** 3  # many silent steps
    previous = music.encode_bars([N(60 + k, 0, 16) for k in range(1)], 1).astype(np.float32).repeat(6, axis=0)
    probabilities[0, 0, 0, 0] = 0.99  # continues the previous bar's C4: no new note
    bars = melody_bars(tf.constant(probabilities), tf.constant(previous)).numpy()
    for index in range(6):
        pair = np.stack([previous[index], probabilities[index]])
        expected = music.encode_bars(music.decode_bars(pair, first_step=-16), 1)[0]
        np.testing.assert_array_equal(bars[index], expected)
    assert bars[0, 0, 0, 0] == 1 and bars[0, 0, 0, 1] == (probabilities[0, 0, 0, 1] > 0.5)


def test_training_moves_both_networks_and_the_previous_bar_matters(chorales):
    source = melody_data.source_from_corpus("bach_chorales", chorales)
    model = MidiNet.from_data(source.info, width=4, latent_dim=8, seed=0)
    model.compile_optimizers({})
    before = [w.copy() for w in (model.generator.get_weights()[0], model.discriminator.get_weights()[0])]
    history = model.fit(source.dataset(16, seed=0, repeat=True), epochs=1, steps_per_epoch=3, verbose=0)
    assert {"d_loss", "g_loss", "g_adversarial", "feature_matching", "d_real", "d_fake"} <= set(history.history)
    assert int(model.generator_optimizer.iterations) == 6 and int(model.discriminator_optimizer.iterations) == 3
    after = (model.generator.get_weights()[0], model.discriminator.get_weights()[0])
    assert all(not np.allclose(a, b) for a, b in zip(before, after))
    chords = np.array([[0, 14, 18, 10]], np.int32)
    primed = model.compose(chords, seed=4, primers=source.info.examples.primers[:1].astype(np.float32))
    plain = model.compose(chords, seed=4)
    assert primed.shape == (1, 4, 16, 24, 2) and np.array_equal(plain, model.compose(chords, seed=4))
    # G reads the previous bar: the first bars differ with another primer (same noise, same chord).
    first_probabilities = [model.generator([np.asarray(noise), model.condition(tf.constant([0])).numpy(), primer], training=False)
                           for noise, primer in [(np.ones((1, 8)), np.zeros((1, 16, 24, 2))),
                                                 (np.ones((1, 8)), source.info.examples.songs[:1, 0].astype("float32"))]]
    assert np.abs(np.subtract(*first_probabilities)).max() > 1e-3
    # ...and the song's progression: the same chord (C) within C-G-Am-F and within Eb-Bb-Cm-Ab.
    within = [model.generator([np.ones((1, 8)), model.condition(tf.constant([0]), tf.constant([progression])).numpy(),
                               np.zeros((1, 16, 24, 2))], training=False) for progression in ([0, 14, 19, 10], [6, 20, 1, 16])]
    assert np.abs(np.subtract(*within)).max() > 1e-3
    config = model.get_config()
    assert config["progression"] is True and MidiNet.from_config(config).generator.count_params() == \
        model.generator.count_params()
    # A model saved before `progression` existed was conditioned on the chord alone.
    old = MidiNet.from_config({k: v for k, v in config.items() if k != "progression"})
    assert old.progression is False and old.generator.get_layer("g_dense0").kernel.shape[0] == 8 + 13
    samples = model.sample(20, seed=0)
    assert samples.images.shape == (20, 16, 24, 2)
    np.testing.assert_array_equal(samples.conditions["labels"], source.info.examples.chords.reshape(-1)[:20])
    assert model.preview(2, 8, seed=0).shape == (16, 72, 48, 1)
    with pytest.raises(ValueError, match="chord classes 0..23"):
        model.compose([[0, 24]])


def test_the_key_term_moves_the_generator_and_not_the_discriminator(chorales):
    source = melody_data.source_from_corpus("bach_chorales", chorales)
    trained = {}
    for key_weight in (0.0, 100.0):
        keras.utils.set_random_seed(0)
        model = MidiNet.from_data(source.info, width=4, latent_dim=8, key_weight=key_weight, seed=0)
        model.compile_optimizers({})
        history = model.fit(source.dataset(16, seed=0, repeat=True), epochs=1, steps_per_epoch=1, verbose=0)
        trained[key_weight] = (model.generator.get_weights(), [w.numpy() for w in model.discriminator.trainable_weights],
                               history.history["feature_matching"][0])
    (g_off, d_off, matching_off), (g_on, d_on, matching_on) = trained[0.0], trained[100.0]
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(d_off, d_on))  # D's step comes first (its
    # batch-norm statistics, which G's steps move too, left out)
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(g_off, g_on))
    assert matching_on > matching_off
    assert MidiNet.from_config(model.get_config()).key_weight == 100.0
    # A model saved before the key term existed was trained without it.
    assert MidiNet.from_config({k: v for k, v in model.get_config().items() if k != "key_weight"}).key_weight == 0.0
    with pytest.raises(ValueError, match="key_weight"):
        MidiNet(key_weight=-1.0)


def test_midinet_and_image_models_refuse_each_others_data(chorales):
    from gan_tf import DCGAN
    from gan_tf.data.builtin import dataset_info

    with pytest.raises(ValueError, match="melody data"):
        MidiNet.from_data(dataset_info("mnist_5k"))
    with pytest.raises(ValueError, match="this dataset holds melody"):
        DCGAN.from_data(melody_data.source_from_corpus("bach_chorales", chorales).info)


def _run(script, *flags, cwd, env=None):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, script), *flags], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


def test_midinet_through_train_tensorboard_export_generate_and_evaluate(tmp_path, chorale_cache, monkeypatch):
    from music21 import converter

    from gan_tf.training import TrainConfig, train

    monkeypatch.setenv("GAN_TF_CACHE", chorale_cache)
    result = train(TrainConfig(model="midinet", dataset="bach_chorales", epochs=1, steps_per_epoch=3, batch_size=16,
                               model_args={"width": 4}, latent_dim=8, eval_every=1, eval_samples=32, verbose=0,
                               workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export")))
    assert set(melody_metrics.METRICS) <= set(result.metrics["generated"])
    assert result.metrics["floor"]["empty_bar_rate"] < 0.2  # real chorale bars are seldom silent
    tags = set()
    for event_file in tf.io.gfile.glob(str(tmp_path / "run" / "logs" / "samples" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags |= {value.tag for value in event.summary.value}
    assert {"samples", "samples_audio", "quality/chord_tone_ratio", "quality/copy_rate"} <= tags

    export = result.export_path
    signatures = tf.saved_model.load(export).signatures
    assert {"serving_default", "compose", "compose_primed", "metadata"} <= set(signatures)
    chords = tf.constant([[0, 14, 18, 10], [19, 10, 0, 14]], tf.int32)
    served = signatures["compose"](chords=chords, seed=tf.constant(5, tf.int64))
    assert served["piano_rolls"].shape == (2, 4, 16, 24, 2) and served["pitches"].shape == (2, 64)
    np.testing.assert_array_equal(served["piano_rolls"].numpy(), result.model.compose(chords.numpy(), seed=5))
    for bad, message in ((tf.constant([0, 1]), "rank"), (tf.constant([[0, 30]]), "chord classes 0..23"),
                         (tf.zeros((1, 65), tf.int32), "1 to 64 bars")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            signatures["compose"](chords=bad, seed=tf.constant(0, tf.int64))
    with pytest.raises(tf.errors.InvalidArgumentError, match="priming_bar must be"):
        signatures["compose_primed"](chords=chords, priming_bar=tf.zeros((1, 16, 24, 2)), seed=tf.constant(0, tf.int64))

    song = tmp_path / "song.mid"
    completed = _run("generate.py", f"--model_path={export}", f"--output={song}", "--bars=8", "--chords=C,G,Am,F",
                     "--seed=3", f"--piano_roll={tmp_path / 'roll.png'}", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    parsed = converter.parse(str(song))
    melody_notes = list(parsed.parts[0].flatten().notes)
    assert parsed.parts[0].flatten().highestTime <= 32 and parsed.parts[1].flatten().highestTime == 32  # 8 bars
    assert all(60 <= n.pitch.midi <= 83 for n in melody_notes)
    chords_read = [music.estimate_chord({p.midi: 1 for p in c.pitches}) for c in parsed.parts[1].flatten().notes]
    assert [music.CHORD_NAMES[c] for c in chords_read] == ["C", "G", "Am", "F"] * 2
    expected = music.decode_bars(signatures["compose"](chords=tf.constant([[0, 14, 19, 10] * 2]),
                                                       seed=tf.constant(3, tf.int64))["piano_rolls"].numpy()[0])
    assert music.read_midi_notes(str(song)) == expected and f"{len(expected)} notes" in completed.stdout
    refused = _run("generate.py", f"--model_path={export}", "--output=song.png", cwd=tmp_path)
    assert refused.returncode == 2 and ".mid" in refused.stderr and "Traceback" not in refused.stderr

    completed = _run("evaluate.py", f"--model_path={export}", "--dataset=bach_chorales", "--num_samples=16",
                     f"--output={tmp_path / 'metrics.json'}", cwd=tmp_path, env={"GAN_TF_CACHE": chorale_cache})
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["num_samples"] == 16 and set(melody_metrics.METRICS) <= set(report["baseline"])
    assert "chord_tone_ratio" in completed.stdout and "random" in completed.stdout


def test_audio_uses_fluidsynth_when_installed_and_falls_back_to_sine_waves_once(monkeypatch, caplog):
    notes, chords = [N(60, 0, 8), N(67, 8, 8)], [0]
    if music.soundfont() is not None:  # .ci/run installs fluidsynth and fluid-soundfont-gm
        audio = music.synthesize(notes, chords, sample_rate=8000)
        assert "sine synthesis" not in caplog.text and audio.dtype == np.float32
    monkeypatch.setattr(music, "SOUNDFONTS", ("/nonexistent.sf2",))
    monkeypatch.setattr(music, "_synth_fallback_said", [])
    first = music.synthesize(notes, chords, sample_rate=8000)
    music.synthesize(notes, chords, sample_rate=8000)
    assert caplog.text.count("sine synthesis") == 1
    # Two bars' worth of sound at 100 quarter notes a minute (4 beats: 2.4 s), peak-normalised.
    assert len(first) >= int(2.4 * 8000) and np.abs(first).max() == pytest.approx(0.9)
