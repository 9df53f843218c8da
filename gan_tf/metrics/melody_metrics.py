"""Objective measures of generated melodies, each next to held-out real bars and a random baseline.

Computed on bars `[N, 16, 24, 2]` (read as melodies by `gan_tf.data.music.decode_bars`, each bar on its
own: a note held over a bar line counts in the bar it starts in) with each bar's chord, the bars
in songs of `song_bars` consecutive bars:

* `empty_bar_rate`: share of bars in which no note sounds.
* `pitch_classes_per_bar`: distinct pitch classes sounding per non-empty bar (MuseGAN's UPC,
  Dong et al. 2018, https://arxiv.org/abs/1709.06298).
* `scale_consistency`: per song, the share of its notes inside the major scale (or its relative
  natural minor, the same set) that holds most of them; the mean over songs (MuseGAN).
* `chord_tone_ratio`: share of notes whose pitch class is a tone of the bar's chord.
* `note_length_distance`: total-variation distance (0 = equal, 1 = disjoint) between the
  histogram of note lengths (1..16 sixteenths) and the training corpus's.
* `pitch_class_distance`: the same between histograms of pitch class relative to the bar's chord
  root and the corpus's (relative to the root, so that it does not depend on the key: the corpus
  holds every piece in 12 transpositions, the held-out songs are in their own keys).
* `copy_rate`: share of non-empty bars identical to a bar of the training corpus (the copying
  check; chorale bars are short stepwise figures that recur across tunes in some key, so most
  real held-out bars are found too, which their own rate shows).
* `phrase_copy_rate`: share of two-bar phrases (each bar after the first of a song, with the bar
  before it; the second not empty) identical to a (previous bar, bar) pair of the corpus: the
  stricter copying check.

`random_bars` is the baseline: each step starts a new note with probability 1/4 (always at a
bar's first step), its pitch uniform over the 24.
"""

import numpy as np

from gan_tf.data import music

METRICS = ("empty_bar_rate", "pitch_classes_per_bar", "scale_consistency", "chord_tone_ratio",
           "note_length_distance", "pitch_class_distance", "copy_rate", "phrase_copy_rate")
_MAJOR_SETS = [frozenset((root + step) % 12 for step in music.MAJOR_SCALE) for root in range(12)]


def binarized(bars):
    """uint8 0/1 bars `[N, 16, 24, 2]` of float (0..1) or uint8 (0..255) bars, read as melodies
    (one pitch per step, the module's threshold and onset rule): what is compared and played."""
    bars = np.asarray(bars)
    values = bars.astype(np.float32) / 255.0 if bars.dtype == np.uint8 and bars.max(initial=0) > 1 else bars
    flat = values.reshape(-1, music.STEPS_PER_BAR, music.NUM_PITCHES, 2)
    out = np.zeros(flat.shape, np.uint8)
    for index, bar in enumerate(flat):
        out[index] = music.encode_bars(music.decode_bars(bar), 1)[0]
    return out


def bar_notes(bars):
    """Per bar, its `Note`s (pitch, start step within the bar, length cut at the bar line)."""
    return [music.decode_bars(bar) for bar in np.asarray(bars)]


def _histogram(values, bins):
    counts = np.bincount(np.asarray(values, np.int64), minlength=bins)[:bins].astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def total_variation(p, q):
    """Half the L1 distance between two histograms (each normalised; an empty one counts as uniform)."""
    p, q = (np.full(len(h), 1.0 / len(h)) if not np.sum(h) else np.asarray(h) / np.sum(h) for h in (p, q))
    return float(0.5 * np.abs(p - q).sum())


def corpus_statistics(bars, chords, previous=None):
    """What the distances compare with: the corpus's note-length and root-relative pitch-class
    histograms, the set of its bars and (with `previous`, each bar's previous bar) of its two-bar
    phrases (bytes)."""
    notes = bar_notes(bars)
    lengths = [n.length for per_bar in notes for n in per_bar]
    relative = [(n.pitch - (chord // 2)) % 12 for per_bar, chord in zip(notes, chords) for n in per_bar]
    return {"lengths": _histogram(lengths, music.STEPS_PER_BAR + 1), "pitch_classes": _histogram(relative, 12),
            "bars": {bar.tobytes() for bar in np.asarray(bars, np.uint8)},
            "phrases": set() if previous is None else {_phrase(a, b) for a, b in zip(previous, bars)}}


def _phrase(previous, bar):
    return np.asarray(previous, np.uint8).tobytes() + np.asarray(bar, np.uint8).tobytes()


def melody_metrics(bars, chords, corpus, song_bars):
    """`{metric: value}` (see the module docstring) of 0/1 `bars` `[N, 16, 24, 2]` with `chords`
    `[N]`, N a multiple of `song_bars`, against `corpus_statistics`."""
    bars = np.asarray(bars, np.uint8)
    chords = np.asarray(chords).reshape(-1)
    if len(bars) != len(chords) or len(bars) % song_bars:
        raise ValueError(f"Need one chord per bar and whole songs of {song_bars} bars. Received: {len(bars)} bars, "
                         f"{len(chords)} chords")
    notes = bar_notes(bars)
    sounding = bars[..., 0].any(axis=(1, 2))
    pitch_classes = [len({n.pitch % 12 for n in per_bar}) for per_bar, on in zip(notes, sounding) if on]
    in_chord = [n.pitch % 12 in music.chord_tones(chord) for per_bar, chord in zip(notes, chords) for n in per_bar]
    consistency = []
    for song in range(len(bars) // song_bars):
        classes = [n.pitch % 12 for per_bar in notes[song * song_bars : (song + 1) * song_bars] for n in per_bar]
        if classes:
            consistency.append(max(sum(c in scale for c in classes) for scale in _MAJOR_SETS) / len(classes))
    lengths = [n.length for per_bar in notes for n in per_bar]
    relative = [(n.pitch - chord // 2) % 12 for per_bar, chord in zip(notes, chords) for n in per_bar]
    non_empty = bars[sounding]
    copies = [bar.tobytes() in corpus["bars"] for bar in non_empty]
    phrases = [_phrase(bars[i - 1], bars[i]) in corpus["phrases"] for i in range(len(bars))
               if i % song_bars and sounding[i]]
    return {
        "empty_bar_rate": float(1.0 - sounding.mean()) if len(bars) else 0.0,
        "pitch_classes_per_bar": float(np.mean(pitch_classes)) if pitch_classes else 0.0,
        "scale_consistency": float(np.mean(consistency)) if consistency else 0.0,
        "chord_tone_ratio": float(np.mean(in_chord)) if in_chord else 0.0,
        "note_length_distance": total_variation(_histogram(lengths, music.STEPS_PER_BAR + 1), corpus["lengths"]),
        "pitch_class_distance": total_variation(_histogram(relative, 12), corpus["pitch_classes"]),
        "copy_rate": float(np.mean(copies)) if copies else 0.0,
        "phrase_copy_rate": float(np.mean(phrases)) if phrases else 0.0,
    }


def random_bars(count, seed=0, onset_probability=0.25):
    """uint8 0/1 bars of the random baseline (see the module docstring)."""
    rng = np.random.default_rng(seed)
    bars = np.zeros((count, music.STEPS_PER_BAR, music.NUM_PITCHES, 2), np.uint8)
    for bar in bars:
        pitch = None
        for step in range(music.STEPS_PER_BAR):
            if step == 0 or rng.random() < onset_probability:
                pitch = int(rng.integers(music.NUM_PITCHES))
                bar[step, pitch, 1] = 1
            bar[step, pitch, 0] = 1
    return bars


class MelodyEvaluator:
    """Scores generated songs against the held-out real songs and the random baseline.

    The interface of `gan_tf.metrics.evaluation.Evaluator` (what `TensorBoardSamples` and evaluate.py
    call): `num_samples`, `metric_names`, `evaluate(bars, chords)` -> `{"generated", "floor",
    "baseline", "num_samples"}`; `floor` is the real held-out bars' metrics.

    Args:
        source: a `gan_tf.data.melodies.MelodySource`.
        num_samples: bars per comparison, rounded down to whole songs (at most all held-out songs).
        seed: of the random baseline.
    """

    metric_names = METRICS

    def __init__(self, source, num_samples, seed=0):
        examples = source.info.examples
        self.song_bars = examples.songs.shape[1]
        songs = max(1, min(len(examples.songs), int(num_samples) // self.song_bars))
        self.num_samples = songs * self.song_bars
        self.real_bars = examples.songs[:songs].reshape(-1, *music.BAR_SHAPE)
        self.real_chords = examples.chords[:songs].reshape(-1)
        self.corpus = corpus_statistics(source.images, source.labels, source.previous)
        self.floor = melody_metrics(self.real_bars, self.real_chords, self.corpus, self.song_bars)
        self.baseline = melody_metrics(random_bars(self.num_samples, seed), self.real_chords, self.corpus, self.song_bars)

    def evaluate(self, bars, chords):
        """The report of generated `bars` (uint8 0..255 or float 0..1) drawn over `chords`."""
        bars = binarized(bars)
        usable = len(bars) // self.song_bars * self.song_bars
        generated = melody_metrics(bars[:usable], np.asarray(chords)[:usable], self.corpus, self.song_bars)
        return {"generated": generated, "floor": self.floor, "baseline": self.baseline, "num_samples": usable}
