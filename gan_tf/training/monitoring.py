"""Watching a GAN train in TensorBoard: sample grids, quality metrics, loss curves and hparams.

`train()` turns all of these on in its workdir; each is also usable on its own with `model.fit`:

    gan.fit(dataset, epochs=20, callbacks=[
        keras.callbacks.TensorBoard("logs", write_steps_per_second=True),
        TensorBoardSamples("logs/samples", evaluator=Evaluator("mnist_5k", 1000), eval_every=5),
    ])

Layout under a log directory `logs/`: `train/` (Keras's `TensorBoard`: losses, learning rates,
steps per second), `samples/` (the image grid every epoch and the `quality/*` metrics every
`eval_every` epochs), `real_floor/` (the same `quality/*` tags for real data against real data,
so TensorBoard draws each metric's floor on the same chart) and the hparams of the run in
`logs/` itself, so `tensorboard --logdir runs/` compares runs side by side.
"""

import csv
import os

import keras
import numpy as np
import tensorflow as tf

from gan_tf.serving.sampling import _to_uint8
from gan_tf.files import write_atomically
from gan_tf.grids import image_grid, save_image
from gan_tf.training.callbacks import sample_grid, timed

# The metrics logged as `quality/<name>`; label accuracy only for conditional models.
QUALITY_METRICS = ("fid", "kid", "classifier_score", "precision", "recall", "sharpness", "classes_covered",
                   "class_kl_to_real", "label_accuracy")


def quality_tag(name, report):
    """`quality/<name>`, with the features named when they are not the dataset's own classifier
    (`quality/fid_random_cnn`, `quality/fid_inception_v3`): values from different features are
    not comparable, so they never share a chart."""
    features = report.get("classifier", {}).get("features", "classifier")
    return f"quality/{name}" if features == "classifier" else f"quality/{name}_{features}"


def quality_summary(metrics):
    """One line for the console about an evaluation report (`TrainResult.metrics`: `epoch`,
    `generated`, `floor`): FID for image data, `FID after epoch 20: 86.7 (real data: 10.2).`;
    for reports without one (melodies), every scalar metric next to the real data's,
    `Quality after epoch 20 (model / real data): scale_consistency 0.843 / 0.971, ...`."""
    generated, floor = metrics["generated"], metrics.get("floor") or {}
    if "fid" in generated:
        return f"FID after epoch {metrics['epoch']}: {generated['fid']:.1f} (real data: {floor['fid']:.1f})."
    parts = []
    for name, value in generated.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            real = floor.get(name)
            parts.append(f"{name} {value:.3f}" + (f" / {real:.3f}" if isinstance(real, (int, float)) else ""))
    return f"Quality after epoch {metrics['epoch']} (model / real data): {', '.join(parts)}."


def evaluation_samples(model, num_samples, seed=4321):
    """`(uint8 images, labels or None)` drawn with a fixed seed (`model.sample`); a
    class-conditional model draws the classes evenly."""
    samples = model.sample(num_samples, seed=seed)
    labels = (samples.conditions or {}).get("labels")
    return _to_uint8(samples.images, model.value_range), labels


class TensorBoardSamples(keras.callbacks.Callback):
    """Logs a fixed-noise sample grid every epoch and the quality metrics every `eval_every`.

    A model whose preview can be heard (`preview_audio`: MidiNet's songs) is also logged through
    `tf.summary.audio` (`samples_audio`); an evaluator that names its own `metric_names` (the
    melody metrics) is logged under those.

    The grid (`samples`, one class per row for conditional models) goes through
    `tf.summary.image`; the metrics (`quality/fid`, `quality/kid`, `quality/precision`, ...,
    see `QUALITY_METRICS`) through `tf.summary.scalar`, with their floors under the same tags in
    the sibling run `real_floor`. Steps are epoch indices, as Keras's `TensorBoard` uses for
    its `epoch_*` scalars. The newest metrics are kept in `latest_metrics`. Given `real_images`,
    a model whose discriminator sees them transformed (`discriminator_view`: a GAN's `augment`)
    also logs them as D sees them (`discriminator_view`), so that what the augmentation does is
    visible.

    Args:
        log_dir: the run directory (e.g. `logs/samples`).
        evaluator: a `gan_tf.metrics.evaluation.Evaluator`, or None for grids only.
        eval_every: epochs between evaluations (at epochs eval_every, 2 * eval_every, ...;
            0 never).
        rows, columns, seed: the grid's layout and fixed noise.
        floor_log_dir: where the floor goes (default: `real_floor` beside `log_dir`).
        png_directory: if given, the same grid is also saved as `<png_directory>/epoch_NNNN.png`
            (what `SampleGrid` writes; one callback, so the grid is generated once).
        latest_png: if given, the newest grid is also written there.
        clock: a `RunClock` that the grids' ("previews") and evaluations' time is added to, or None.
        real_images: a few real images in the model's `value_range` (for `discriminator_view`), or None.
    """

    def __init__(self, log_dir, evaluator=None, eval_every=5, rows=10, columns=10, seed=1234, floor_log_dir=None,
                 png_directory=None, latest_png=None, clock=None, real_images=None):
        super().__init__()
        if eval_every < 0:
            raise ValueError(f"eval_every must be >= 0. Received: {eval_every}")
        self.log_dir = log_dir
        self.png_directory = png_directory
        self.latest_png = latest_png
        self.floor_log_dir = floor_log_dir or os.path.join(os.path.dirname(os.path.normpath(log_dir)), "real_floor")
        self.evaluator = evaluator
        self.eval_every = eval_every
        self.rows, self.columns, self.seed = rows, columns, seed
        self.latest_metrics = None
        self.clock = clock
        self.real_images = real_images
        self._writers = {}

    def _writer(self, log_dir):
        if log_dir not in self._writers:
            self._writers[log_dir] = tf.summary.create_file_writer(log_dir)
        return self._writers[log_dir]

    def on_epoch_end(self, epoch, logs=None):
        with timed(self.clock, "previews"):
            self._log_previews(epoch)
        if self.evaluator is not None and self.eval_every and (epoch + 1) % self.eval_every == 0:
            with timed(self.clock, "evaluation"):
                self._log_quality(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _log_previews(self, epoch):
        grid = sample_grid(self.model, self.rows, self.columns, self.seed)
        with self._writer(self.log_dir).as_default():
            tf.summary.image("samples", grid[np.newaxis], step=epoch,
                             description="Samples from fixed noise; row k is class k for conditional models.")
        if self.real_images is not None:
            view = self.model.discriminator_view(self.real_images, self.seed)
            if view is not None:
                with self._writer(self.log_dir).as_default():
                    tf.summary.image("discriminator_view", image_grid(view, self.model.value_range, 8)[np.newaxis],
                                     step=epoch, description="Real images as D sees them in training (augmented).")
        audio = self.model.preview_audio(self.seed)
        if audio is not None:
            waveform, sample_rate = audio
            with self._writer(self.log_dir).as_default():
                tf.summary.audio("samples_audio", np.asarray(waveform, np.float32).reshape(1, -1, 1), sample_rate,
                                 step=epoch, description="The first preview sample, synthesised.")
        if self.png_directory:
            save_image(os.path.join(self.png_directory, f"epoch_{epoch + 1:04d}.png"), grid)
        if self.latest_png:
            save_image(self.latest_png, grid)

    def _log_quality(self, epoch):
        images, labels = evaluation_samples(self.model, self.evaluator.num_samples)
        report = self.evaluator.evaluate(images, labels)
        for log_dir, values in ((self.log_dir, report["generated"]), (self.floor_log_dir, report["floor"])):
            with self._writer(log_dir).as_default():
                for name in getattr(self.evaluator, "metric_names", QUALITY_METRICS):
                    if name in values:
                        tf.summary.scalar(quality_tag(name, report), values[name], step=epoch)
        self.latest_metrics = {"epoch": epoch + 1, **report}

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class LossCurves(keras.callbacks.Callback):
    """Plots the training curves in a CSV history (Keras's `CSVLogger`) to a PNG every epoch.

    Reading the CSV rather than this run's logs keeps the curves whole across resumed runs
    (`CSVLogger(append=True)`); an epoch logged twice keeps its newest row. The left panel has
    `d_loss` and `g_loss`, the right one what D outputs: its mean probabilities `d_real` and
    `d_fake`, or for hinge discriminators their mean scores, or for critics the Wasserstein
    estimate.
    Place it after the `CSVLogger` in the callback list.

    Args:
        csv_path: the `CSVLogger` file.
        png_path: the plot, replaced atomically.
    """

    def __init__(self, csv_path, png_path):
        super().__init__()
        self.csv_path = csv_path
        self.png_path = png_path

    def on_epoch_end(self, epoch, logs=None):
        history = read_history(self.csv_path)
        if history:
            plot_history(history, self.png_path)


def read_history(csv_path):
    """`{column: [values by epoch]}` from a `CSVLogger` file, one row per epoch (newest wins)."""
    if not os.path.exists(csv_path):
        return {}
    rows = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows[int(row["epoch"])] = row
            except (KeyError, TypeError, ValueError):
                continue  # a partly written last line
    history = {}
    for epoch in sorted(rows):
        for name, value in rows[epoch].items():
            try:
                history.setdefault(name, []).append(float(value))
            except (TypeError, ValueError):
                history.setdefault(name, []).append(float("nan"))
    return history


def plot_history(history, png_path):
    """Draws losses and D's outputs by epoch into `png_path` (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = np.asarray(history["epoch"]) + 1
    figure, (losses, probabilities) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in ("d_loss", "g_loss"):
        if name in history:
            losses.plot(epochs, history[name], label=name)
    losses.set(title="losses", xlabel="epoch")
    if "d_real" in history:
        panel, title = ("d_real", "d_fake"), "D's mean probability of 'real'"
        probabilities.set(ylim=(0.0, 1.0))
    elif "real_score" in history:
        panel, title = ("real_score", "fake_score"), "D's mean score"
    else:
        panel, title = ("wasserstein",), "critic's Wasserstein estimate"
    for name in panel:
        if name in history:
            probabilities.plot(epochs, history[name], label=name)
    probabilities.set(title=title, xlabel="epoch")
    for axes in (losses, probabilities):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    try:
        write_atomically(png_path, lambda temporary: figure.savefig(temporary, dpi=90))
    finally:
        plt.close(figure)


def log_hparams(log_dir, hparams):
    """Records a run's flags for TensorBoard's HParams dashboard.

    The dashboard takes a run's metrics from the scalars under `log_dir` (its `train/`,
    `samples/`, ... runs: `epoch_d_loss`, `quality/fid`, ...), so runs compare side by side
    with their final values. `None` values are recorded as "default".
    """
    from tensorboard.plugins.hparams import api as hp

    values = {}
    for name, value in hparams.items():
        if value is None:
            value = "default"
        elif not isinstance(value, (bool, int, float, str)):
            value = str(value)
        values[name] = value
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hp.hparams(values)
    writer.close()


def log_time_split(log_dir, split, step):
    """Writes where a run's wall time went (`RunClock.split`) as scalars `time/<kind>_seconds`, and
    each kind's share of the whole as `time/<kind>_share`, in the run `log_dir`, at `step`."""
    total = sum(split.values())
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        for kind, seconds in split.items():
            tf.summary.scalar(f"time/{kind}_seconds", seconds, step=step)
            tf.summary.scalar(f"time/{kind}_share", seconds / total if total else 0.0, step=step)
    writer.close()


def time_summary(split):
    """The console's line for `RunClock.split`: `Time: 412 s: steps 350 s (85%), ...`."""
    total = sum(split.values())
    parts = ", ".join(f"{kind} {seconds:.0f} s ({seconds / total:.0%})" if total else f"{kind} 0 s"
                      for kind, seconds in split.items())
    return f"Time: {total:.0f} s: {parts}."


# ------------------------------------------------------------------------------- resuming


def rewind_logs(log_dir, history_csv, epochs):
    """Removes what the epochs from `epochs` (0-based) on logged, and every earlier start's
    hparams record, so that a run resumed from a checkpoint after `epochs` complete epochs logs
    each epoch once.

    A run logs an epoch (CSV row, TensorBoard scalars and images, whose steps are epoch
    indices) before it writes that epoch's checkpoint; a run killed in between, or mid-epoch,
    has logged epochs that its resumed run trains again. This drops them: rows of `history_csv`
    whose `epoch` is `epochs` or more, and in every TensorBoard event file under `log_dir`
    the summaries at such steps, plus hparams records (each start writes its own). A record
    cut short by the kill is dropped too. Files are rewritten atomically, and only when
    something is dropped.
    """
    if os.path.exists(history_csv):
        with open(history_csv, newline="") as f:
            rows = list(csv.reader(f))
        if rows:
            header, body = rows[0], rows[1:]
            epoch_column = header.index("epoch") if "epoch" in header else None
            kept = [row for row in body if epoch_column is None or (row and int(row[epoch_column]) < epochs)]
            if len(kept) != len(body):
                def write(path):
                    with open(path, "w", newline="") as f:
                        csv.writer(f).writerows([header] + kept)
                write_atomically(history_csv, write)
    if not os.path.isdir(log_dir):
        return
    for directory, _, names in os.walk(log_dir):
        for name in names:
            if "tfevents" in name and not name.startswith("."):
                _rewind_event_file(os.path.join(directory, name), epochs)


def _rewind_event_file(path, epochs):
    from tensorflow.core.util import event_pb2

    records, damaged = [], False
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            records.append(record)
    except tf.errors.DataLossError:  # the last record was cut short
        damaged = True
    kept = []
    for record in records:
        event = event_pb2.Event.FromString(record)
        if event.HasField("summary"):
            hparams = any(value.metadata.plugin_data.plugin_name == "hparams" for value in event.summary.value)
            if event.step >= epochs or hparams:
                continue
        kept.append(record)
    if len(kept) == len(records) and not damaged:
        return

    def write(temporary):
        with tf.io.TFRecordWriter(temporary) as writer:
            for record in kept:
                writer.write(record)

    write_atomically(path, write)
