"""Melody data: the Bach chorales inside the music21 wheel, or a folder of the user's MIDI files.

A melody dataset yields `((bars, previous_bars, song_chords), chords)` batches: `bars` and
`previous_bars` float32 `[batch, 16, 24, 2]` in [0, 1] (`gan_tf.data.music`'s piano roll with onsets),
`chords` int32 `[batch]` chord classes (C, Cm, C#, ...: `gan_tf.data.music.CHORD_NAMES`),
`song_chords` int32 `[batch, SONG_BARS]` the chords of the `SONG_BARS`-bar song the bar is in
(-1 past a piece's end). Each example is one bar of a piece's melody, the bar before it
(MidiNet's 2-D condition; silence before a piece's first bar), the bar's chord (its 1-D
condition) and the progression around it (what tells the key, which one chord leaves open).

Sources (`--dataset`):

* `bach_chorales`: the 371 four-part chorales of music21's corpus (no download). Kept: those in
  4/4 throughout whose notes all lie on the sixteenth-note grid. Melody: the part named Soprano
  (else the first part); ties are joined into one note. The first bar is the first full bar
  (an upbeat becomes the end of its previous bar). Chord of a bar: `music.estimate_chord` over
  the other voices' notes weighted by duration, the lowest of them as the bass. Each piece is
  moved by the fewest semitones (at most 6) that fit its melody into C4-B5, or left out.
  Parsing takes about a minute, once: the encoded bars are cached in
  `<cache_dir>/bach_chorales-v1-music21-<version>.npz` (`GAN_TF_CACHE`, default ~/.cache/gan_tf).
* `midi:PATH`: every `.mid` / `.midi` file under PATH. The melody track is the non-drum track
  with the highest mean pitch (ties: the one with more notes), reduced to one note per step by
  keeping the highest note sounding ("skyline"); the chords come from the other non-drum tracks
  (or the melody itself if it is alone). Time is quantised to sixteenth notes from the file's
  ticks; bars of 4/4 from the file's start. Each file is moved by the fewest semitones that put
  most of its melody in C4-B5; notes still outside are dropped. Files that do not parse, hold no
  notes, or are not in 4/4 are **skipped** and counted in the summary, never a crash.

Pieces are split by tune: settings of one hymn tune (Bach harmonised many more than once) are
grouped by the bars they share, and every tenth group is held out whole. The training set holds every bar in
each of `TRANSPOSITIONS` (-5..+6 semitones) that keeps it and its previous bar inside C4-B5 (the
augmentation, fixed and so exactly resumable); held-out pieces stay in their key and are cut
into `SONG_BARS`-bar songs (`MelodyExamples`), the real bars the metrics compare with and whose
chord progressions the model previews and is evaluated over.
"""

import dataclasses
import glob
import logging
import os

import numpy as np
import tensorflow as tf

from gan_tf.data import music
from gan_tf.data.info import DatasetError, DatasetInfo
from gan_tf.data.pipeline import index_batches, without_autotune
from gan_tf.data.source import DataSource, SpecKind, default_cache_dir
from gan_tf.files import write_atomically

logger = logging.getLogger(__name__)

BUILT_INS = ("bach_chorales",)
MIDI_EXTENSIONS = (".mid", ".midi")
TRANSPOSITIONS = tuple(range(-5, 7))
SONG_BARS = 8
HELD_OUT_EVERY = 10
# Share of bar shapes two pieces have in common to count as settings of one tune (`tune_groups`).
SAME_TUNE_OVERLAP = 0.5
CACHE_VERSION = 1


def is_melody_spec(spec):
    kind, _, rest = str(spec).partition(":")
    return spec in BUILT_INS or (kind == "midi" and bool(rest))


class SkipPiece(Exception):
    """A piece that cannot be used (the message says why); its source skips and counts it."""


@dataclasses.dataclass(frozen=True)
class MelodyExamples:
    """Held-out songs of `SONG_BARS` consecutive bars: `songs` uint8 `[S, 8, 16, 24, 2]`, their
    `chords` int32 `[S, 8]` and `primers` uint8 `[S, 16, 24, 2]` (the bar before each song)."""

    songs: np.ndarray
    chords: np.ndarray
    primers: np.ndarray


# ------------------------------------------------------------------------------ pieces

def _fitting_shift(low, high, limit):
    """The smallest shift in [-limit, limit] (ties: upward) that puts MIDI pitches low..high in range."""
    for shift in sorted(range(-limit, limit + 1), key=lambda s: (abs(s), -s)):
        if music.in_range(low + shift) and music.in_range(high + shift):
            return shift
    return None


def piece_from_notes(notes, accompaniment, total_steps, first_step):
    """`(bars uint8 [n + 1, 16, 24, 2], chords int32 [n + 1], shift)` of one piece.

    `notes`: the melody's `Note`s (absolute steps); `accompaniment`: `(pitch, start, length)` of
    the other voices; full bars start at `first_step` (the upbeat before it is bar 0, with its
    silence before); `total_steps` ends the piece (an incomplete last bar is dropped).
    """
    num_bars = (total_steps - first_step) // music.STEPS_PER_BAR
    if num_bars < 1 or not notes:
        raise SkipPiece("no full bar of melody")
    pitches = [note.pitch for note in notes]
    shift = _fitting_shift(min(pitches), max(pitches), 6)
    if shift is None:
        raise SkipPiece(f"melody spans more than two octaves ({min(pitches)}-{max(pitches)})")
    origin = first_step - music.STEPS_PER_BAR
    bars = music.encode_bars([music.Note(p + shift, s, l) for p, s, l in notes], num_bars + 1, first_step=origin)
    chords = []
    for bar in range(num_bars + 1):
        begin = origin + bar * music.STEPS_PER_BAR
        end = begin + music.STEPS_PER_BAR
        weights, bass = {}, None
        for pitch, start, length in accompaniment:
            overlap = min(end, start + length) - max(begin, start)
            if overlap > 0:
                weights[pitch] = weights.get(pitch, 0) + overlap
                bass = pitch if bass is None else min(bass, pitch)
        chords.append(music.estimate_chord({p + shift: w for p, w in weights.items()},
                                           None if bass is None else bass + shift))
    return bars, np.asarray(chords, np.int32), shift


def _on_grid(quarter_length):
    steps = float(quarter_length) * music.STEPS_PER_QUARTER
    return abs(steps - round(steps)) < 1e-6


def chorale_piece(score):
    """A music21 chorale's `piece_from_notes` (SkipPiece for one that is not usable)."""
    signatures = {ts.ratioString for ts in score.recurse().getElementsByClass("TimeSignature")}
    if signatures != {"4/4"}:
        raise SkipPiece(f"not in 4/4 ({', '.join(sorted(signatures)) or 'no time signature'})")
    parts = list(score.parts)
    melody_part = next((p for p in parts if "soprano" in (p.partName or "").lower()), parts[0])
    measures = list(melody_part.getElementsByClass("Measure"))
    upbeat = measures[0].duration.quarterLength if measures and measures[0].duration.quarterLength < 4 else 0
    notes = []
    for element in melody_part.flatten().notes:
        if element.duration.quarterLength == 0:  # grace notes
            continue
        if not (_on_grid(element.offset) and _on_grid(element.duration.quarterLength)):
            raise SkipPiece("notes off the sixteenth-note grid")
        pitch = max(p.midi for p in element.pitches)
        start = int(round(element.offset * music.STEPS_PER_QUARTER))
        length = int(round(element.duration.quarterLength * music.STEPS_PER_QUARTER))
        tied = element.tie is not None and element.tie.type in ("stop", "continue")
        if tied and notes and notes[-1].pitch == pitch and notes[-1].start + notes[-1].length == start:
            notes[-1] = notes[-1]._replace(length=notes[-1].length + length)
        else:
            notes.append(music.Note(pitch, start, length))
    accompaniment = []
    for part in parts:
        if part is melody_part:
            continue
        for element in part.flatten().notes:
            start = int(round(element.offset * music.STEPS_PER_QUARTER))
            length = int(round(element.duration.quarterLength * music.STEPS_PER_QUARTER))
            accompaniment.extend((p.midi, start, length) for p in element.pitches)
    total = int(round(melody_part.flatten().highestTime * music.STEPS_PER_QUARTER))
    return piece_from_notes(notes, accompaniment, total, int(round(upbeat * music.STEPS_PER_QUARTER)))


def midi_piece(path):
    """A MIDI file's `piece_from_notes` under the module docstring's rules (SkipPiece if unusable)."""
    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(path)
    except Exception as error:  # noqa: BLE001 (mido and pretty_midi raise many kinds for bad files)
        raise SkipPiece(f"does not parse as MIDI ({type(error).__name__})") from None
    odd = sorted({f"{ts.numerator}/{ts.denominator}" for ts in midi.time_signature_changes} - {"4/4"})
    if odd:
        raise SkipPiece(f"not in 4/4 ({', '.join(odd)})")
    tracks = [track for track in midi.instruments if not track.is_drum and track.notes]
    if not tracks:
        raise SkipPiece("no notes")
    step_ticks = midi.resolution / music.STEPS_PER_QUARTER

    def steps(track):
        found = []
        for note in track.notes:
            start = int(round(midi.time_to_tick(note.start) / step_ticks))
            end = int(round(midi.time_to_tick(note.end) / step_ticks))
            if end > start:
                found.append((note.pitch, start, end - start))
        return found

    melody_track = max(tracks, key=lambda t: (np.mean([n.pitch for n in t.notes]), len(t.notes)))
    melody = steps(melody_track)
    if not melody:
        raise SkipPiece("no notes longer than a sixteenth")
    total = max(start + length for _, start, length in melody)
    top = np.full(total, -1)
    for pitch, start, length in melody:  # skyline: the highest note sounding at each step
        top[start : start + length] = np.maximum(top[start : start + length], pitch)
    starts = {(start, pitch) for pitch, start, _ in melody}
    notes, current = [], None
    for step in range(total + 1):
        pitch = top[step] if step < total else -1
        if current is not None and (pitch != current.pitch or (step, pitch) in starts):
            notes.append(current._replace(length=step - current.start))
            current = None
        if pitch >= 0 and current is None:
            current = music.Note(int(pitch), step, 0)
    shifts = sorted(range(-12, 13), key=lambda s: (-sum(music.in_range(n.pitch + s) for n in notes), abs(s), -s))
    shift = shifts[0]
    kept = [n for n in notes if music.in_range(n.pitch + shift)]
    if not kept:
        raise SkipPiece("no melody notes")
    # Place the melody so that piece_from_notes's own shift is zero, then move it back.
    others = [p for track in tracks if track is not melody_track for p in steps(track)] or melody
    total = max(total, max(start + length for _, start, length in others))
    total = -(-total // music.STEPS_PER_BAR) * music.STEPS_PER_BAR  # the last bar, padded with silence
    bars, chords, _ = piece_from_notes([n._replace(pitch=n.pitch + shift) for n in kept],
                                       [(p + shift, s, l) for p, s, l in others], total, first_step=0)
    return bars, chords, shift


# ------------------------------------------------------------------------------ corpora

def _cache_path(cache_dir=None):
    import music21

    return os.path.join(cache_dir or default_cache_dir(),
                        f"bach_chorales-v{CACHE_VERSION}-music21-{music21.__version__}.npz")


def _pack(names, pieces, skipped):
    bars = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros((0,) + music.BAR_SHAPE, np.uint8)
    chords = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros(0, np.int32)
    lengths = np.asarray([len(p[0]) for p in pieces], np.int64)
    return {"names": np.asarray(names), "bars": bars, "chords": chords, "lengths": lengths,
            "skipped": np.asarray(skipped, dtype=object) if skipped else np.zeros((0, 2), dtype=object)}


def load_chorales(cache_dir=None, limit=None):
    """`{"names", "bars", "chords", "lengths", "skipped"}`: every usable chorale, encoded (cached).

    `limit` parses only the first `limit` chorales (in music21's order) and bypasses the cache.
    """
    try:
        import music21  # noqa: F401
        from music21 import corpus
    except ImportError:
        raise DatasetError("bach_chorales needs music21 (pip install music21): the chorales ship inside it") from None
    path = _cache_path(cache_dir)
    if limit is None and os.path.exists(path):
        try:
            with np.load(path, allow_pickle=True) as cached:
                return {key: cached[key] for key in cached.files}
        except (OSError, ValueError, KeyError) as error:
            logger.warning("Rebuilding the chorale cache %s (%s)", path, error)
    names = list(corpus.chorales.Iterator(returnType="filename"))
    if limit is not None:
        names = names[:limit]
    kept, pieces, skipped = [], [], []
    for name in names:
        try:
            bars, chords, _ = chorale_piece(corpus.parse(name))
        except SkipPiece as reason:
            skipped.append((name, str(reason)))
            continue
        kept.append(name)
        pieces.append((bars, chords))
    packed = _pack(kept, pieces, skipped)
    if limit is None:
        write_atomically(path, lambda temporary: np.savez_compressed(temporary, **packed))
    return packed


def load_midi_folder(root):
    """The same dict for the MIDI files under `root`; DatasetError if none is usable."""
    if not os.path.isdir(root):
        raise DatasetError(f"midi:{root}: no such directory")
    paths = sorted(p for p in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                   if p.lower().endswith(MIDI_EXTENSIONS) and os.path.isfile(p))
    if not paths:
        raise DatasetError(f"midi:{root}: no .mid or .midi files")
    kept, pieces, skipped = [], [], []
    for path in paths:
        try:
            bars, chords, _ = midi_piece(path)
        except SkipPiece as reason:
            skipped.append((os.path.relpath(path, root), str(reason)))
            continue
        kept.append(os.path.relpath(path, root))
        pieces.append((bars, chords))
    if not pieces:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped[:5])
        raise DatasetError(f"midi:{root}: none of its {len(paths)} MIDI file(s) is usable ({reasons})")
    return _pack(kept, pieces, skipped)


def bar_shapes(bars):
    """Each bar's bytes after moving it down to its lowest note: equal for a bar and its
    transpositions (silent bars included)."""
    lowest, _ = music.pitch_span(bars)
    return [music.transpose_bars(bar, -int(low) if low < music.NUM_PITCHES else 0).tobytes()
            for bar, low in zip(bars, lowest)]


def tune_groups(pieces, overlap=SAME_TUNE_OVERLAP):
    """Group ids of `pieces` (`[(bars, chords)]`): pieces sharing a tune are in one group.

    Bach set many hymn tunes more than once (bwv 347 and bwv 153.1 and ... share melodies); two
    pieces are the same tune when at least `overlap` of the smaller one's distinct bar shapes
    (`bar_shapes`, key-free) are also the other's; groups are the connected sets.
    """
    shapes = [set(bar_shapes(bars[1:])) for bars, _ in pieces]
    parent = list(range(len(pieces)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(pieces)):
        for j in range(i + 1, len(pieces)):
            smaller = min(len(shapes[i]), len(shapes[j])) or 1
            if len(shapes[i] & shapes[j]) >= overlap * smaller:
                parent[root(j)] = root(i)
    return [root(i) for i in range(len(pieces))]


def split_pieces(corpus_arrays):
    """`(train, held_out)`: lists of `(bars, chords)` per piece. Pieces are grouped by tune
    (`tune_groups`) and every `HELD_OUT_EVERY`-th group, in the order of its first piece's name, is
    held out whole, so that no held-out melody was trained on in another harmonisation (of one
    group only, it trains and is held out)."""
    offsets = np.concatenate([[0], np.cumsum(corpus_arrays["lengths"])])
    pieces = [(corpus_arrays["bars"][a:b], corpus_arrays["chords"][a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
    groups = tune_groups(pieces)
    names = corpus_arrays["names"]
    first_names = sorted({g: min(str(names[i]) for i in range(len(pieces)) if groups[i] == g) for g in set(groups)}.items(),
                         key=lambda item: item[1])
    held_groups = {g for k, (g, _) in enumerate(first_names) if k % HELD_OUT_EVERY == HELD_OUT_EVERY - 1}
    train = [piece for piece, group in zip(pieces, groups) if group not in held_groups]
    held_out = [piece for piece, group in zip(pieces, groups) if group in held_groups]
    if not held_out:
        held_out = train
    return train, held_out


def song_windows(chords, song_bars=SONG_BARS):
    """int32 `[len(chords) - 1, song_bars]`: for each bar after a piece's first, the chords of the
    `song_bars`-bar song it falls in (songs start at bar 1, as `held_out_songs` cuts them; -1 pads
    the piece's last, shorter song): the progression a bar is written within."""
    chords = np.asarray(chords, np.int32)
    windows = np.full((max(0, len(chords) - 1), song_bars), -1, np.int32)
    for index in range(1, len(chords)):
        start = 1 + (index - 1) // song_bars * song_bars
        window = chords[start : start + song_bars]
        windows[index - 1, : len(window)] = window
    return windows


def training_examples(pieces, transpositions=TRANSPOSITIONS):
    """`(bars, previous_bars, chords, song_chords)` of every full bar of `pieces` in every
    transposition that keeps the bar and its previous bar inside the range; `song_chords` int32
    `[N, SONG_BARS]` are the chords of each bar's song (`song_windows`)."""
    bars = np.concatenate([b[1:] for b, _ in pieces])
    previous = np.concatenate([b[:-1] for b, _ in pieces])
    chords = np.concatenate([c[1:] for _, c in pieces])
    windows = np.concatenate([song_windows(c) for _, c in pieces])
    low = np.minimum(*[music.pitch_span(x)[0] for x in (bars, previous)])
    high = np.maximum(*[music.pitch_span(x)[1] for x in (bars, previous)])
    found = ([], [], [], [])
    for shift in transpositions:
        keep = (low + shift >= 0) & (high + shift < music.NUM_PITCHES)
        found[0].append(music.transpose_bars(bars[keep], shift))
        found[1].append(music.transpose_bars(previous[keep], shift))
        found[2].append(music.transpose_chords(chords[keep], shift))
        found[3].append(np.where(windows[keep] < 0, -1, music.transpose_chords(np.maximum(windows[keep], 0), shift)))
    return tuple(np.concatenate(parts) for parts in found)


def held_out_songs(pieces, song_bars=SONG_BARS):
    """`MelodyExamples` of every `song_bars` consecutive full bars of `pieces` (in their key)."""
    songs, chords, primers = [], [], []
    for bars, piece_chords in pieces:
        for start in range(1, len(bars) - song_bars + 1, song_bars):
            songs.append(bars[start : start + song_bars])
            chords.append(piece_chords[start : start + song_bars])
            primers.append(bars[start - 1])
    if not songs:
        raise DatasetError(f"The held-out pieces have no {song_bars} consecutive bars to evaluate on")
    return MelodyExamples(np.stack(songs), np.stack(chords).astype(np.int32), np.stack(primers))


# ------------------------------------------------------------------------------ the source

def open_melody_source(spec, cache_dir=None):
    """A `MelodySource` for `bach_chorales` or `midi:PATH`."""
    kind, _, rest = spec.partition(":")
    corpus_arrays = load_chorales(cache_dir) if spec == "bach_chorales" else load_midi_folder(rest)
    return source_from_corpus(spec, corpus_arrays)


def source_from_corpus(spec, corpus_arrays):
    """The `MelodySource` of encoded pieces (`load_chorales` / `load_midi_folder`'s dict)."""
    train, held_out = split_pieces(corpus_arrays)
    bars, previous, chords, song_chords = training_examples(train)
    examples = held_out_songs(held_out)
    info = DatasetInfo(music.BAR_SHAPE, music.NUM_CHORDS, music.CHORD_NAMES, examples=examples, modality="melody")
    skipped = corpus_arrays["skipped"]
    skipped_text = f", {len(skipped)} skipped" + (f" (e.g. {skipped[0][0]}: {skipped[0][1]})" if len(skipped) else "")
    summary = (f"{spec}: {len(corpus_arrays['names'])} pieces{skipped_text}; {len(train)} train -> {len(bars):,} bars "
               f"in {len(TRANSPOSITIONS)} transpositions, {len(held_out)} held out -> {len(examples.songs)} "
               f"{SONG_BARS}-bar songs")
    logger.info(summary)
    return MelodySource(spec=spec, info=info, num_examples=len(bars), in_memory=True, summary=summary,
                        images=bars, labels=chords.astype(np.int32), previous=previous,
                        song_chords=song_chords.astype(np.int32),
                        content_key=f"{spec}-{len(bars)}-{int(bars.sum())}")


@dataclasses.dataclass
class MelodySource(DataSource):
    """A `DataSource` of melody bars: `images` the bars (uint8 0/1 `[N, 16, 24, 2]`), `labels` their
    chords, `previous` the bar before each, `song_chords` the chords of each bar's song (int32
    `[N, SONG_BARS]`, -1 padded); `info.examples` the held-out songs."""

    previous: np.ndarray = None
    song_chords: np.ndarray = None

    def dataset(self, batch_size, value_range=(0.0, 1.0), seed=None, repeat=False, start_batch=0):
        """`((bars, previous_bars, song_chords), chords)` batches, full batches only (see the module
        docstring)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: {batch_size}")
        if batch_size > self.num_examples:
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({self.num_examples} bars): "
                             "with the remainder dropped no batch would be left")
        low, high = value_range
        bars, previous, chords = tf.constant(self.images), tf.constant(self.previous), tf.constant(self.labels)
        song_chords = tf.constant(self.song_chords)

        def gather(indices):
            def scaled(x):
                return tf.cast(tf.gather(x, indices), tf.float32) * (high - low) + low

            return (scaled(bars), scaled(previous), tf.gather(song_chords, indices)), tf.gather(chords, indices)

        order = index_batches(self.num_examples, batch_size, seed=seed, repeat=repeat, start_batch=start_batch)
        return without_autotune(order.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    def arrays(self, max_examples=None, seed=0):
        """`(uint8 bars scaled to 0..255, chords)` (a seeded draw of at most `max_examples`)."""
        images, labels = super().arrays(max_examples, seed)
        return images * np.uint8(255), labels


SPEC_KIND = SpecKind(f"melodies: {', '.join(BUILT_INS)} or midi:PATH", is_melody_spec,
                     lambda spec, options: open_melody_source(spec))
