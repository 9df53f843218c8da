"""What the benches share: a wall-clock budget for `fit`, `--models` entries parsed, and the
held-out images a likelihood is measured on."""

import dataclasses
import time

from absl import app


def held_out_source(dataset):
    """`(source, split name)`: the dataset's test split, or its training images for data with
    no held-out split (mnist_5k)."""
    from gan_tf.data import DatasetError, open_source

    try:
        return open_source(dataset, split="test"), "test"
    except DatasetError:
        return open_source(dataset), "train (no held-out split)"


def stop_after(seconds):
    """A callback that ends `fit` after the first train step past `seconds` of training."""
    return report_at([seconds], lambda model, trained: None)


def report_at(seconds, report):
    """A callback that calls `report(model, trained_seconds)` after the first train step past each
    of `seconds` (of training: the time spent reporting is not counted) and ends `fit` after the
    last, so that one run gives a model's figures at several budgets."""
    import keras

    class ReportAtSeconds(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.time()
            self.pending = sorted(seconds)

        def on_train_batch_end(self, batch, logs=None):
            trained = time.time() - self.start
            if not self.pending or trained <= self.pending[0]:
                return
            self.pending.pop(0)
            began = time.time()
            report(self.model, trained)
            self.start += time.time() - began
            if not self.pending:
                self.model.stop_training = True

    return ReportAtSeconds()


def parse_entry(entry):
    """`"cgan+ema_decay=0+mismatch_weight=0"` -> `("cgan", {"model_args": {...}})`.

    Options after the model name: `ema` (ema_decay=0.999), `diffaugment` (augment="color,
    translation,cutout", which a comma-separated `--models` list cannot spell), `field=value` for a TrainConfig
    field (`batch_size=32`), and any other `name=value` is a model argument, parsed and checked
    exactly as train.py's `--model_arg` is.
    """
    from gan_tf.models.generative import parse_model_args
    from gan_tf.training import TrainConfig

    config_fields = {field.name for field in dataclasses.fields(TrainConfig)} - {"model", "model_args", "epochs", "eval_every"}
    model, *options = entry.split("+")
    overrides, model_args = {}, {}
    for option in options:
        if option == "ema":
            model_args["ema_decay"] = 0.999
            continue
        if option == "diffaugment":
            model_args["augment"] = "color,translation,cutout"
            continue
        ((key, value),) = parse_model_args([option]).items()
        (overrides if key in config_fields else model_args)[key] = value
    if model_args:
        overrides["model_args"] = model_args
    try:
        TrainConfig(model=model, **overrides).validate()
    except ValueError as error:
        raise app.UsageError(f"--models entry {entry!r}: {error}") from None
    return model, overrides
