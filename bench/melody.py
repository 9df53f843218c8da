"""Trains melody models with one wall-clock budget each and prints the melody metrics table.

    python bench/melody.py --seconds=300 --models=midinet,midinet+previous_bar=false \\
        --roll_png=docs/midinet_bach.png --song=docs/midinet_bach.mid

Each model trains on `--dataset` (default `bach_chorales`) through `gan_tf.training.train` (as
`train.py` does) until the first step past `--seconds`, or for `--epochs` of `--steps_per_epoch`
steps when that is given without `--seconds` (seeded by the entry's `seed=`, default 0: the same
updates on any machine, so such runs may share one), then writes one song over each held-out
song's chord progression (seed 1, from silence) and is scored by `gan_tf.metrics.melody_metrics` next to
the held-out real bars and the random baseline (the same chords). With `--roll_png` / `--song`
the first model also writes `--chords` (8 bars by default) as a piano-roll picture and a MIDI
file. A benchmark, not a test: with `--seconds`, run nothing else meanwhile.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags, logging

from bench.common import parse_entry, stop_after  # noqa: E402

flags.DEFINE_list("models", ["midinet"], "Models, each `name[+option...]` as bench/quality.py's.")
flags.DEFINE_string("dataset", "bach_chorales", "Melody data (bach_chorales or midi:PATH).")
flags.DEFINE_integer("seconds", 300, "Wall-clock training budget per model (not applied when only --epochs is given).")
flags.DEFINE_integer("epochs", None, "Epochs of --steps_per_epoch steps per model; with --seconds, a cap.")
flags.DEFINE_integer("steps_per_epoch", 500, "Train steps per epoch (the budget usually ends one mid-way).")
flags.DEFINE_string("chords", "C,G,Am,F,C,F,G,C", "The progression of the --roll_png / --song example.")
flags.DEFINE_string("roll_png", None, "Optional piano-roll picture of the first model's song over --chords.")
flags.DEFINE_string("song", None, "Optional MIDI file of that song.")
flags.DEFINE_string("output", None, "Optional JSON output.")
FLAGS = flags.FLAGS


def _clock_applies():
    """`--seconds` ends training unless `--epochs` alone was given."""
    return FLAGS["seconds"].present or not FLAGS["epochs"].present


def main(argv):
    logging.set_verbosity(logging.WARNING)
    from gan_tf.data import music
    from gan_tf.grids import image_grid, save_image
    from gan_tf.metrics.evaluation import make_evaluator
    from gan_tf.metrics.melody_metrics import METRICS
    from gan_tf.data import open_source
    from gan_tf.training import TrainConfig, train

    source = open_source(FLAGS.dataset)
    if source.info.modality != "melody":
        raise app.UsageError(f"{FLAGS.dataset} is not melody data")
    print(f"Data: {source.summary}")
    evaluator = make_evaluator(source, 10**9, seed=1)  # every held-out song
    progressions = evaluator.real_chords.reshape(-1, evaluator.song_bars)
    columns, results = [], {}
    for entry in FLAGS.models:
        name, overrides = parse_entry(entry)
        with tempfile.TemporaryDirectory() as workdir:
            config = TrainConfig(model=name, dataset=FLAGS.dataset, epochs=FLAGS.epochs or 10**6, steps_per_epoch=FLAGS.steps_per_epoch,
                                 eval_every=0, verbose=0, workdir=os.path.join(workdir, "run"),
                                 export_dir=os.path.join(workdir, "export"), **overrides)
            started = time.time()
            result = train(config, callbacks=[stop_after(FLAGS.seconds)] if _clock_applies() else [])
            seconds = time.time() - started
        model = result.model
        updates = int(model.discriminator_optimizer.iterations)
        bars = model.compose(progressions, seed=1).reshape(-1, *music.BAR_SHAPE)
        report = evaluator.evaluate(bars, progressions.reshape(-1))
        results[entry] = {"metrics": report["generated"], "d_updates": updates, "train_seconds": seconds,
                          "parameters": int(model.generator.count_params() + model.discriminator.count_params())}
        columns.append(entry)
        print(f"{entry}: {updates:,} D updates ({updates * model.generator_steps:,} G) in {seconds:.0f} s")
        if entry == FLAGS.models[0] and (FLAGS.roll_png or FLAGS.song):
            chords = np.asarray(music.parse_chords(FLAGS.chords), np.int32)
            song = model.compose(chords[None], seed=1)[0]
            if FLAGS.roll_png:
                save_image(FLAGS.roll_png, image_grid(music.display_bars(song, scale=4), (0.0, 1.0), len(chords)))
                print(f"Wrote {FLAGS.roll_png} ({FLAGS.chords})")
            if FLAGS.song:
                music.write_midi(FLAGS.song, music.decode_bars(song), chords)
                print(f"Wrote {FLAGS.song}")
    print(f"\n{report['num_samples']} bars ({len(progressions)} songs of {evaluator.song_bars}) over the held-out "
          f"songs' chords; seed 1")
    widths = [max(10, len(c) + 2) for c in columns]
    header = "".join(f"{c:>{w}}" for c, w in zip(columns, widths))
    print(f"{'metric':<22}{header}{'real bars':>12}{'random':>10}")
    for key in METRICS:
        values = "".join(f"{results[c]['metrics'][key]:>{w}.3f}" for c, w in zip(columns, widths))
        print(f"{key:<22}{values}{evaluator.floor[key]:>12.3f}{evaluator.baseline[key]:>10.3f}")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"models": results, "real_bars": evaluator.floor, "random": evaluator.baseline,
                       "bars": report["num_samples"]}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
