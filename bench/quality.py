"""Trains each model with one budget and prints one quality table.

    python bench/quality.py --epochs=20 --num_samples=2000 --output=quality.json
    python bench/quality.py --models=cgan,cgan+ema_decay=0,cgan+ema_decay=0+mismatch_weight=0
    python bench/quality.py --dataset=fashion_mnist --seconds=240 \
        --models=dcgan,wgan_gp,sngan,acgan,sagan,biggan
    python bench/quality.py --seconds=300 --models=dcgan,lapgan --grids_dir=docs
    python bench/quality.py --dataset=folder:/tmp/fashion32 --seconds=240 --models=dcgan,lapgan
    python bench/quality.py --seconds=150 --num_samples=1000 \
        --models=dcgan+max_examples=1000,dcgan+max_examples=1000+diffaugment   # small data
    python bench/quality.py --models=dcgan,sngan --truncations=2,1.5,1   # the truncation trick

The budget is `--epochs` per model, or with `--seconds` the same wall-clock time for every model
(training stops after the first train step past it; `--epochs`, when given too, caps it;
evaluation is not counted and runs only at the end). Columns: model, epochs begun, generator updates (optimizer steps of the busiest
optimizer), wall time, FID, KID, precision, recall, sharpness (Laplacian energy over the real
images'), classes covered (each class at least 4% of the samples), smallest class share, label
accuracy (conditional models), centre offset (mean pixels from each image's centre of mass to its
centre) and brightness (mean pixel value in [0, 1], and its spread over images: augmentation that
leaks into samples moves these two away from the floor's; the JSON also has the border's brightness, `border_brightness`), bits per dimension on `--likelihood_images` held-out images
(the test split; the training images for data without one; "-" for models without a likelihood),
the Parzen window estimate of log-likelihood in nats with its standard error (with
`--parzen_samples`: the GAN paper's protocol, `gan_tf.metrics.parzen`; the floor row places its
kernels on real training images), milliseconds per sampled image (the model's default sampler,
batches of 100) and parameters. With `--truncations`, each trained model is also evaluated on
samples whose Gaussian z is truncated to [-t, t] (the truncation trick, Brock et al. 2018; the
same trained weights, one more row per t, named `model @ truncation t`).

    python bench/quality.py --seconds=150 --num_samples=1000 \
        --models=dcgan,cgan,vae,cvae,pixelcnn,conditional_pixelcnn

The first row is an untrained generator; the last is the floor (real half vs real half). Each
model's rows are printed (and written to `--output`) as soon as it is evaluated, so a run cut
short keeps what it finished; the whole table follows at the end. A benchmark, not a test: run nothing
else meanwhile; on 2 CPU cores it takes about the budget times the number of models, plus a few
minutes of evaluation (and of classifier training on a dataset's first use).
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
from absl import app, flags

from bench.common import held_out_source as _held_out_source, parse_entry as _parse_entry, stop_after as _stop_after  # noqa: E402

flags.DEFINE_list("models", ["mlp_gan", "dcgan", "cgan"],
                 "Models to train, each `name[+option...]`: `+ema` sets ema_decay=0.999 (samples from G's "
                 "average), `+diffaugment` sets augment=color,translation,cutout, `+name=value` a TrainConfig field (batch_size=32) or else a model argument, as "
                 "train.py's --model_arg (e.g. cgan+mismatch_weight=0).")
flags.DEFINE_string("dataset", "mnist_5k", "Dataset to train and evaluate on.")
flags.DEFINE_integer("epochs", 20, "Epochs per model (the quickstart's 20); with --seconds, a cap only when given.")
flags.DEFINE_integer("seconds", None, "Wall-clock training budget per model (then --epochs is only a cap).")
flags.DEFINE_integer("num_samples", 2000, "Samples evaluated per model.")
flags.DEFINE_integer("likelihood_images", 1000, "Held-out images for bits per dimension (models with a likelihood).")
flags.DEFINE_integer("parzen_samples", 0, "Samples per model for the GAN paper's Parzen window estimate, in nats, on "
                     "--likelihood_images held-out images (0: skip; the paper: 10000).")
flags.DEFINE_list("truncations", [], "Also evaluate each trained model with z truncated to [-t, t], for each t "
                  "(models that draw Gaussian noise; none: only the model's own sampling).")
flags.DEFINE_string("output", None, "Optional JSON output.")
flags.DEFINE_string("grids_dir", None, "Optional folder for each model's preview grid (PNG, 8 x 9 cells) after its budget.")
FLAGS = flags.FLAGS


def _row(name, epochs, seconds, report, updates=0, bits_per_dim=None, sample_ms=None, parameters=None, parzen=None):
    generated = report["generated"]
    return {
        "parzen_nats": None if parzen is None else parzen["log_likelihood"],
        "parzen_standard_error": None if parzen is None else parzen["standard_error"],
        "parzen_sigma": None if parzen is None else parzen["sigma"],
        "sharpness": generated.get("sharpness"),
        "bits_per_dim": bits_per_dim,
        "sample_ms_per_image": sample_ms,
        "parameters": parameters,
        "model": name,
        "epochs": epochs,
        "generator_updates": updates,
        "seconds": round(seconds),
        "fid": generated["fid"],
        "kid": generated["kid"],
        "precision": generated["precision"],
        "recall": generated["recall"],
        "classes_covered_4pct": int(np.sum(np.array(generated["class_histogram"]) >= 0.04)),
        "smallest_class_share": min(generated["class_histogram"]),
        "label_accuracy": generated.get("label_accuracy"),
        "centre_offset": generated.get("centre_offset"),
        "brightness": generated.get("brightness"),
        "brightness_spread": generated.get("brightness_spread"),
        "border_brightness": generated.get("border_brightness"),
    }


def _table_line(r):
    """One row of the printed markdown table."""

    def shown(value, form):
        return "-" if value is None else format(value, form)

    return (f"| {r['model']} | {r['epochs']} | {r['generator_updates']} | {r['seconds']} | {r['fid']:.1f} | {r['kid']:.2f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {shown(r['sharpness'], '.2f')} | {r['classes_covered_4pct']} | "
            f"{r['smallest_class_share']:.3f} | {shown(r['label_accuracy'], '.3f')} | {shown(r['centre_offset'], '.2f')} | "
            f"{shown(r['brightness'], '.3f')} ({shown(r['brightness_spread'], '.3f')}) | {shown(r['bits_per_dim'], '.3f')} | "
            f"{shown(r['parzen_nats'], '.1f')} ({shown(r['parzen_standard_error'], '.1f')}) | "
            f"{shown(r['sample_ms_per_image'], '.1f')} | {shown(r['parameters'], ',')} |")


def _save(rows):
    """Writes the rows so far to `--output` (after every model, so a killed run keeps them)."""
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(rows, f, indent=2)


def _epoch_cap():
    """`--epochs`; with `--seconds` and no `--epochs` given, no cap (the clock alone ends training:
    the default 20 would stop fast models early and make the budget unequal)."""
    if FLAGS.seconds and not FLAGS["epochs"].present:
        return 10**6
    return FLAGS.epochs


def main(argv):
    from gan_tf.data import classifiers
    from gan_tf.metrics import evaluation
    from gan_tf.models import MODELS
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.training import TrainConfig, train

    from gan_tf.data import open_source

    dataset = FLAGS.dataset
    source = open_source(dataset)
    classifier = classifiers.data_classifier(source)  # a built-in's, or one trained on a folder's classes
    held_out, held_out_split = _held_out_source(dataset)
    held_out_images, held_out_labels = held_out.arrays(max_examples=FLAGS.likelihood_images, seed=0)
    if FLAGS.parzen_samples:
        from gan_tf.metrics import parzen

        validation, test, unused_real = parzen.validation_and_test(
            source.arrays()[0], None if held_out_split != "test" else held_out.arrays()[0],
            num_test=FLAGS.likelihood_images)

    def parzen_of(images):
        return parzen.parzen_estimate(images, validation, test) if FLAGS.parzen_samples else None

    rows = []
    keras.utils.set_random_seed(0)  # the untrained weights too, as train() seeds the trained ones
    untrained = MODELS["dcgan"](image_shape=source.info.image_shape, seed=0)
    images = _to_uint8(untrained.generate(FLAGS.num_samples, seed=1), untrained.value_range)
    report = evaluation.evaluate_samples(images, dataset, classifier=classifier)
    rows.append(_row("untrained dcgan", 0, 0, report))
    for name in FLAGS.models:
        model, overrides = _parse_entry(name)
        with tempfile.TemporaryDirectory() as workdir:
            config = TrainConfig(model=model, dataset=dataset, epochs=_epoch_cap(),
                                 workdir=os.path.join(workdir, "run"), export_dir=os.path.join(workdir, "export"),
                                 eval_every=0 if FLAGS.seconds else 5, verbose=0, **overrides)
            start = time.time()
            result = train(config, callbacks=[_stop_after(FLAGS.seconds)] if FLAGS.seconds else ())
            seconds = time.time() - start
            gan = result.model
            updates = int(max(int(o.iterations) for o in gan.optimizer_roles().values()))
            epochs = len(next(iter(result.history.values())))  # begun (the last may be cut short)
        if FLAGS.grids_dir:
            from gan_tf.training.callbacks import sample_grid
            from gan_tf.grids import save_image

            save_image(os.path.join(FLAGS.grids_dir, f"{dataset}_{name.replace('+', '_').replace('=', '')}.png"),
                       sample_grid(gan, 8, 9, seed=1234))
        gan.sample(4, seed=0)  # trace the sampling graph before timing it
        sampling = time.time()
        samples = gan.sample(FLAGS.num_samples, seed=1)
        sample_ms = 1000 * (time.time() - sampling) / FLAGS.num_samples
        labels = (samples.conditions or {}).get("labels")
        report = evaluation.evaluate_samples(_to_uint8(samples.images, gan.value_range), dataset, labels=labels,
                                             classifier=classifier)
        likelihood = gan.log_likelihood(held_out_images, {"labels": held_out_labels} if labels is not None else None)
        bits = None if likelihood is None else float(np.mean(likelihood["bits_per_dim"]))
        estimate = parzen_of(_to_uint8(gan.sample(FLAGS.parzen_samples, seed=2).images, gan.value_range)
                             if FLAGS.parzen_samples else None)
        first_row = len(rows)
        rows.append(_row(name, epochs, seconds, report, updates, bits, sample_ms, int(gan.count_params()), estimate))
        for truncation in map(float, FLAGS.truncations):
            truncated = gan.sample(FLAGS.num_samples, seed=1, truncation=truncation)
            labels = (truncated.conditions or {}).get("labels")
            report = evaluation.evaluate_samples(_to_uint8(truncated.images, gan.value_range), dataset, labels=labels,
                                                 classifier=classifier)
            rows.append(_row(f"{name} @ truncation {truncation:g}", epochs, seconds, report, updates))
        print(f"{name}: done in {seconds:.0f}s", flush=True)
        for finished in rows[first_row:]:
            print(_table_line(finished), flush=True)  # its rows now: a killed run keeps what it finished
        _save(rows)
    # The floor's Parzen row: kernels on real training images that are neither validation nor test.
    floor = _row("real (floor)", 0, 0, {"generated": report["floor"]},
                 parzen=parzen_of(unused_real[: FLAGS.parzen_samples]) if FLAGS.parzen_samples else None)
    rows.append(floor)

    budget = f"{FLAGS.seconds} s per model" if FLAGS.seconds else f"{FLAGS.epochs} epochs per model"
    print(f"\n{dataset}, {budget}, {FLAGS.num_samples} samples, classifier test accuracy "
          f"{classifier.test_accuracy:.3f}, bits/dim on {len(held_out_images)} {held_out_split} images, "
          f"{os.cpu_count()} cores")
    print("| model | epochs | G updates | wall s | FID | KID | precision | recall | sharpness | classes >= 4% | "
          "smallest class | label acc. | centre offset | brightness | bits/dim | Parzen nats (s.e.) | ms/image | parameters |")
    print("| --- " * 18 + "|")

    for r in rows:
        print(_table_line(r))
    _save(rows)


if __name__ == "__main__":
    app.run(main)
