"""Melodies as bars of piano roll, chords as 24 classes, and MIDI files and audio from them.

The representation MidiNet generates (Yang, Chou & Yang 2017, https://arxiv.org/abs/1703.10847,
section 3.1), with one addition so that it is exact:

* A **bar** is 16 sixteenth-note steps (one 4/4 bar) by `NUM_PITCHES` = 24 pitches, C4 (MIDI 60)
  to B5 (83): MidiNet's two octaves. A bar array is `[16, 24, 2]`, values 0 or 1: channel 0 is the
  piano roll (pitch p sounds at step t), channel 1 the **onsets** (a note of pitch p starts at t).
  MidiNet's roll alone cannot tell one half note from two repeated quarter notes, which chorale
  melodies are full of; the onset channel makes bars -> notes -> bars round-trip exactly.
* A melody is monophonic: at most one pitch sounds per step. `decode_bars` reads any generated
  array as one: at each step the loudest pitch sounds if its roll value exceeds 0.5, and a note
  starts where the pitch changes, after silence, or where that pitch's onset value exceeds 0.5.
  A note held over a bar line continues into the next bar (no onset there).
* A **chord** is one of 24 classes, `root * 2 + minor` (C, Cm, C#, C#m, ..., B, Bm), given to the
  networks as MidiNet's 13-dimensional vector (12 pitch classes of the root, 1 for minor):
  `chord_vectors`. `estimate_chord` finds a bar's chord from the notes of the other voices.

A `Note` is `(pitch, start, length)` in MIDI numbers and steps. `write_midi` / `read_midi` use
pretty_midi; `synthesize` renders audio with FluidSynth and a General MIDI soundfont (Debian's
`fluidsynth` and `fluid-soundfont-gm`), or with pretty_midi's sine waves where none is installed
(said once in the log).
"""

import collections
import logging
import os
import re

import numpy as np

from gan_tf.files import write_atomically

logger = logging.getLogger(__name__)

STEPS_PER_BAR = 16
STEPS_PER_QUARTER = 4
LOWEST_PITCH = 60  # C4
NUM_PITCHES = 24  # C4 .. B5
BAR_SHAPE = (STEPS_PER_BAR, NUM_PITCHES, 2)
NUM_CHORDS = 24
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CHORD_NAMES = tuple(name + quality for name in PITCH_CLASS_NAMES for quality in ("", "m"))
# Semitones above the root of each chord quality's tones.
CHORD_TONES = {0: (0, 4, 7), 1: (0, 3, 7)}  # major, minor
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor
DEFAULT_TEMPO = 100.0  # quarter notes per minute, for MIDI files and audio
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")

Note = collections.namedtuple("Note", ["pitch", "start", "length"])
Note.__doc__ = "A melody note: MIDI `pitch`, `start` step and `length` in sixteenth-note steps."


# ------------------------------------------------------------------------------ chords

def chord_id(root, minor):
    """The class of the chord on pitch class `root` (0 = C), major or `minor`."""
    return int(root) % 12 * 2 + int(bool(minor))


def chord_tones(chord):
    """The three pitch classes of chord class `chord`."""
    root, minor = divmod(int(chord), 2)
    return tuple((root + step) % 12 for step in CHORD_TONES[minor])


def chord_vectors(chords):
    """float32 `[..., 13]`: MidiNet's chord condition (one-hot root, then 1 for minor) of chord ids."""
    chords = np.asarray(chords, np.int64)
    vectors = np.zeros(chords.shape + (13,), np.float32)
    np.put_along_axis(vectors, (chords // 2)[..., None], 1.0, axis=-1)
    vectors[..., 12] = chords % 2
    return vectors


_CHORD_PATTERN = re.compile(r"^([A-Ga-g])([#b]?)(m|min|minor|maj|major|M)?$")
_NATURAL = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_chord(text):
    """The chord class of a name such as `C`, `Am`, `F#`, `Bbm`, `Ebmaj`; ValueError otherwise."""
    match = _CHORD_PATTERN.match(str(text).strip())
    if not match:
        raise ValueError(f"Not a chord name: {text!r} (a root C..B with an optional # or b, then m for minor: "
                         "C, Am, F#, Bbm)")
    letter, accidental, quality = match.groups()
    root = _NATURAL[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]
    return chord_id(root, quality in ("m", "min", "minor"))


def parse_chords(text):
    """Chord classes of a comma-separated list (`"C,G,Am,F"`)."""
    names = [part for part in str(text).split(",") if part.strip()]
    if not names:
        raise ValueError(f"Expected comma-separated chord names such as C,G,Am,F. Received: {text!r}")
    return [parse_chord(name) for name in names]


def estimate_chord(pitch_weights, bass_pitch=None):
    """The chord class that best explains a bar's accompaniment.

    Args:
        pitch_weights: `{midi pitch: weight}` (how long each pitch sounds in the bar).
        bass_pitch: the bar's lowest pitch, whose pitch class counts half again as a root.

    Every major and minor triad is scored by the weight of its three pitch classes plus half the
    bass's weight when the bass is its root; the best wins (ties: the lower class id). A bar
    with no notes is C major.
    """
    histogram = np.zeros(12)
    for pitch, weight in pitch_weights.items():
        histogram[int(pitch) % 12] += weight
    if not histogram.any():
        return 0
    bass_weight = 0.5 * histogram.max() if bass_pitch is not None else 0.0
    scores = []
    for chord in range(NUM_CHORDS):
        tones = chord_tones(chord)
        score = histogram[list(tones)].sum()
        if bass_pitch is not None and int(bass_pitch) % 12 == tones[0]:
            score += bass_weight
        scores.append(score)
    return int(np.argmax(scores))


# ------------------------------------------------------------------------------ bars

def in_range(pitch):
    return LOWEST_PITCH <= int(pitch) < LOWEST_PITCH + NUM_PITCHES


def encode_bars(notes, num_bars, first_step=0):
    """uint8 `[num_bars, 16, 24, 2]`: the bars from step `first_step` on of a monophonic melody.

    Notes (`Note` or `(pitch, start, length)`) outside the window are cut at its edges; a note
    that began before the window sounds without an onset. Raises ValueError for a pitch outside
    C4-B5 inside the window, or for overlapping notes.
    """
    bars = np.zeros((num_bars * STEPS_PER_BAR, NUM_PITCHES, 2), np.uint8)
    end = num_bars * STEPS_PER_BAR
    for pitch, start, length in notes:
        begin, stop = int(start) - first_step, int(start) + int(length) - first_step
        if stop <= 0 or begin >= end or length <= 0:
            continue
        if not in_range(pitch):
            raise ValueError(f"Pitch {pitch} is outside the melody range MIDI {LOWEST_PITCH}-{LOWEST_PITCH + NUM_PITCHES - 1}")
        row = int(pitch) - LOWEST_PITCH
        span = slice(max(begin, 0), min(stop, end))
        if bars[span, :, 0].any():
            raise ValueError(f"Overlapping notes at steps {span.start}-{span.stop}: a melody here is monophonic")
        bars[span, row, 0] = 1
        if begin >= 0:
            bars[begin, row, 1] = 1
    return bars.reshape(num_bars, STEPS_PER_BAR, NUM_PITCHES, 2)


def melody_steps(bars, threshold=0.5):
    """`(pitches, onsets)` per step of a bar sequence `[..., 16, 24, 2]` flattened in time: the
    sounding MIDI pitch (-1 for silence) and whether a note starts there (the module's rule)."""
    rolls = np.asarray(bars, np.float32).reshape(-1, NUM_PITCHES, 2)
    loudest = rolls[:, :, 0].argmax(axis=1)
    sounding = rolls[np.arange(len(rolls)), loudest, 0] > threshold
    pitches = np.where(sounding, loudest + LOWEST_PITCH, -1)
    marked = rolls[np.arange(len(rolls)), loudest, 1] > threshold
    previous = np.concatenate([[-1], pitches[:-1]])
    onsets = sounding & ((pitches != previous) | marked)
    return pitches, onsets


def decode_bars(bars, threshold=0.5, first_step=0):
    """The `Note`s of a sequence of bars `[num_bars, 16, 24, 2]` (or one bar `[16, 24, 2]`), read
    as one continuous melody starting at step `first_step` (see the module docstring)."""
    pitches, onsets = melody_steps(bars, threshold)
    notes, current = [], None
    for step, (pitch, onset) in enumerate(zip(pitches, onsets)):
        if current is not None and (pitch != current[0] or onset):
            notes.append(Note(current[0], current[1] + first_step, step - current[1]))
            current = None
        if pitch >= 0 and current is None:
            current = (int(pitch), step)
    if current is not None:
        notes.append(Note(current[0], current[1] + first_step, len(pitches) - current[1]))
    return notes


def transpose_bars(bars, semitones):
    """`bars` shifted `semitones` along the pitch axis (the caller checks the range)."""
    return np.roll(np.asarray(bars), int(semitones), axis=-2)


def transpose_chords(chords, semitones):
    chords = np.asarray(chords, np.int64)
    return ((chords // 2 + int(semitones)) % 12) * 2 + chords % 2


def pitch_span(bars):
    """`(lowest, highest)` sounding pitch row of each bar `[N, 16, 24, 2]` (`(24, -1)` when silent)."""
    active = np.asarray(bars)[..., 0].any(axis=-2)  # [N, 24]
    rows = np.arange(NUM_PITCHES)
    lowest = np.where(active, rows, NUM_PITCHES).min(axis=-1)
    highest = np.where(active, rows, -1).max(axis=-1)
    return lowest, highest


def display_bars(bars, scale=3):
    """float32 `[N, 24 * scale, 16 * scale, 1]` pictures of bars `[N, 16, 24, 2]`: pitch upward,
    time to the right; a note's first step white, the rest of it grey; a faint line where each
    bar begins and at each C."""
    bars = np.asarray(bars, np.float32)
    picture = np.maximum(0.6 * bars[..., 0], bars[..., 0] * bars[..., 1])  # [N, 16, 24]
    guides = np.zeros(picture.shape[1:], np.float32)
    guides[0, :] = 0.15
    guides[:, ::12] = 0.15
    picture = np.maximum(picture, guides)
    picture = np.transpose(picture, (0, 2, 1))[:, ::-1]
    picture = np.repeat(np.repeat(picture, scale, axis=1), scale, axis=2)
    return picture[..., None]


# ------------------------------------------------------------------------------ MIDI and audio

def steps_to_seconds(steps, tempo=DEFAULT_TEMPO):
    return float(steps) * 60.0 / tempo / STEPS_PER_QUARTER


def melody_midi(notes, chords=None, tempo=DEFAULT_TEMPO, program=0):
    """A `pretty_midi.PrettyMIDI` of `notes` (General MIDI `program`, 0: piano), and when `chords`
    (one class per bar) are given, each chord held as a triad below C4 on a second track."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    melody = pretty_midi.Instrument(program=program, name="melody")
    for pitch, start, length in notes:
        melody.notes.append(pretty_midi.Note(velocity=96, pitch=int(pitch), start=steps_to_seconds(start, tempo),
                                             end=steps_to_seconds(start + length, tempo)))
    midi.instruments.append(melody)
    if chords is not None:
        accompaniment = pretty_midi.Instrument(program=program, name="chords")
        for bar, chord in enumerate(chords):
            root = chord_tones(chord)[0]
            for tone in chord_tones(chord):
                pitch = 48 + (tone - root) % 12 + root  # the triad in root position from C3 up
                accompaniment.notes.append(pretty_midi.Note(
                    velocity=60, pitch=int(pitch), start=steps_to_seconds(bar * STEPS_PER_BAR, tempo),
                    end=steps_to_seconds((bar + 1) * STEPS_PER_BAR, tempo)))
        midi.instruments.append(accompaniment)
    return midi


def write_midi(path, notes, chords=None, tempo=DEFAULT_TEMPO):
    """Writes `notes` (and the chords, if given) as a standard MIDI file at `path`, atomically."""
    write_atomically(path, melody_midi(notes, chords, tempo).write)
    return path


def read_midi_notes(path, track=0):
    """The `Note`s of one track of a MIDI file written by `write_midi` (time read back in steps
    at the file's tempo)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(path)
    notes = []
    for note in midi.instruments[track].notes:
        start, end = midi.time_to_tick(note.start), midi.time_to_tick(note.end)
        step = midi.resolution / STEPS_PER_QUARTER
        notes.append(Note(note.pitch, int(round(start / step)), int(round((end - start) / step))))
    return sorted(notes, key=lambda note: note.start)


_synth_fallback_said = []


def soundfont():
    """The first General MIDI soundfont installed, or None."""
    return next((path for path in SOUNDFONTS if os.path.exists(path)), None)


def synthesize(notes, chords=None, sample_rate=16000, tempo=DEFAULT_TEMPO):
    """float32 mono audio in [-1, 1] of `notes` (and chords): FluidSynth with a General MIDI
    soundfont when both are installed, else pretty_midi's sine waves (said once)."""
    midi = melody_midi(notes, chords, tempo)
    font = soundfont()
    audio = None
    if font is not None:
        try:
            audio = midi.fluidsynth(fs=sample_rate, sf2_path=font)
        except (ImportError, OSError, AttributeError) as error:  # pyfluidsynth without libfluidsynth
            reason = f"FluidSynth failed ({error})"
        else:
            reason = None
    else:
        reason = "no General MIDI soundfont is installed (Debian: fluidsynth fluid-soundfont-gm)"
    if audio is None:
        if not _synth_fallback_said:
            logger.warning("Audio: %s; using pretty_midi's sine synthesis.", reason)
            _synth_fallback_said.append(True)
        audio = midi.synthesize(fs=sample_rate)
    audio = np.asarray(audio, np.float32)
    peak = np.abs(audio).max() if audio.size else 0.0
    return audio / peak * 0.9 if peak > 0 else audio
