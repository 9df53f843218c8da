"""Measures a trained generator: FID, KID, classifier score, precision/recall, sharpness, mode
coverage and (conditional models) label accuracy, each next to its floor (the same metric between
two halves of real data), and, for models with a likelihood (the VAEs), bits per dimension on
held-out images, and on request (--parzen_samples) the GAN paper's Parzen window estimate of
log-likelihood; for melody models (MidiNet), the melody metrics of gan_tf/metrics/melody_metrics.py
next to held-out real bars and a random baseline. Features come from our own classifier for the dataset (trained and cached on
first use; see gan_tf/metrics/evaluation.py).

    python evaluate.py --model_path=saved_models/dcgan/1 --dataset=mnist_5k --num_samples=2000 \\
        --output=metrics.json
"""

import dataclasses
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags, logging

from gan_tf import data as gan_data
from gan_tf.metrics.evaluation import baseline_images, evaluate_samples, evaluate_translation, load_inception, make_evaluator
from gan_tf.data.pairs import bicubic_downsample, reversed_source
from gan_tf.metrics import parzen
from gan_tf.metrics.melody_metrics import METRICS as MELODY_METRICS
from gan_tf.serving.sampling import (compose_local, describe_model, log_likelihood_local, newest_version, sample_local,
                                    translate_local)
from gan_tf.data import open_source

flags.DEFINE_string("model_path", None, "A SavedModel version directory (train.py's export), an export's base path "
                    "(its newest version) or a .keras file.")
flags.DEFINE_string("dataset", "mnist_5k", "The data the model was trained to imitate: a built-in name, folder:PATH or tfds:NAME[:SPLIT].")
flags.DEFINE_string("data_dir", None, "Where the dataset's files are, if not the defaults.")
flags.DEFINE_string("image_size", None, "The size the model was trained at (train.py's --image_size), if not the data's own.")
flags.DEFINE_integer("channels", None, "The channels the model was trained with (train.py's --channels), if not the data's own.")
flags.DEFINE_string("crop", "center", "train.py's --crop.")
flags.DEFINE_integer("num_samples", 2000, "Samples to generate (capped at half the real data).")
flags.DEFINE_string("labels", "balanced", "Conditional models: 'balanced' (every class in turn), class ids "
                    "'3' or '3,7' (cycled), or 'none'.")
flags.DEFINE_enum("features", "classifier", ["classifier", "inception"], "Whose features: our per-dataset "
                  "classifier, or Inception-v3 with ImageNet weights (no mode coverage or label accuracy then).")
flags.DEFINE_string("inception_weights", None, "Path of Keras's Inception-v3 ImageNet weights file "
                    "(default: ~/.keras/models, downloaded if reachable).")
flags.DEFINE_integer("likelihood_images", 1000, "Held-out images to measure bits per dimension on, for models with a "
                     "likelihood (0: skip).")
flags.DEFINE_integer("parzen_samples", 0, "Generated images for the GAN paper's Gaussian Parzen window estimate of "
                     "log-likelihood, in nats, on --likelihood_images held-out images (0: skip; the paper: 10000).")
flags.DEFINE_string("likelihood_split", "test", "The split they come from (data without it: the training images, said so).")
flags.DEFINE_integer("seed", 0, "Seed of the generated noise and of the real halves.")
flags.DEFINE_string("direction", None, "Image-to-image models: which mapping to evaluate (default: the model's "
                    "first, e.g. a_to_b).")
flags.DEFINE_string("output", None, "Where to write the metrics as JSON.")
FLAGS = flags.FLAGS

_PAIRED_ROWS = [("l1", "L1 to target"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM")]
_ROWS = [("fid", "FID"), ("kid", "KID"), ("classifier_score", "classifier score"), ("precision", "precision"),
         ("recall", "recall"), ("sharpness", "sharpness"), ("classes_covered", "classes covered"),
         ("class_kl_to_real", "class KL to real"),
         ("label_accuracy", "label accuracy")]


def _fail(message):
    print(f"evaluate.py: error: {message}", file=sys.stderr)
    return 2


def _labels(flag, model, num_samples, model_path):
    """The label each sample is drawn for (None for unconditional models); ValueError if unusable."""
    flag = flag.strip().lower()
    if not model["conditional"]:
        if flag not in ("balanced", "none", ""):
            raise ValueError(f"--labels={flag} was given, but {model_path} is not a conditional model")
        return None
    if flag in ("none", ""):
        raise ValueError(
            f"{model_path} is a conditional model: it draws each image for a label, and label accuracy "
            "needs those labels. Use --labels=balanced (the default) or class ids such as --labels=3,7"
        )
    if flag == "balanced":
        return np.arange(num_samples) % model["num_classes"]
    try:
        ids = np.array([int(part) for part in flag.split(",")])
    except ValueError:
        raise ValueError(f"--labels must be 'balanced', 'none' or comma-separated class ids. Received: {flag}") from None
    if ids.min() < 0 or ids.max() >= model["num_classes"]:
        raise ValueError(f"--labels must be class ids in [0, {model['num_classes'] - 1}]. Received: {flag}")
    return np.resize(ids, num_samples)


def _held_out(source, split):
    """`(the source of split, its name)`, or `(None, why)` when the data have no such split."""
    try:
        return open_source(FLAGS.dataset, data_dir=FLAGS.data_dir, split=split, image_size=FLAGS.image_size,
                           channels=FLAGS.channels, crop=FLAGS.crop), split
    except gan_data.DatasetError:
        return None, "train (the data have no held-out split)"


def _likelihood(model_path, model, source, num_images, split, seed):
    """Bits per dimension on `num_images` images of `split` (or of the training data when the
    dataset has no such split); `{"bits_per_dim": None}` for a model without a likelihood."""
    if num_images <= 0:
        return None
    held_out, split_name = _held_out(source, split)
    images, labels = (held_out or source).arrays(max_examples=num_images, seed=seed)
    results = log_likelihood_local(model_path, images, labels if model["conditional"] else None, seed=seed)
    if results is None:
        return {"bits_per_dim": None, "note": "the model defines no likelihood"}
    summary = {"bits_per_dim": float(np.mean(results["bits_per_dim"])), "split": split_name, "images": int(len(images))}
    if "elbo" in results:
        dimensions = int(np.prod(images.shape[1:]))
        summary["elbo_bits_per_dim"] = float(-np.mean(results["elbo"]) / (dimensions * np.log(2.0)))
    return summary


def _parzen(model, source, labels_flag):
    """The GAN paper's Parzen window estimate (`gan_tf.metrics.parzen`): `--parzen_samples`
    generated images, sigma chosen on 1,000 training images, the mean log-density in nats of
    `--likelihood_images` images of `--likelihood_split` (without that split: other training images)."""
    held_out, split_name = _held_out(source, FLAGS.likelihood_split)
    train_images = source.arrays(seed=FLAGS.seed)[0]
    held_out_images = None if held_out is None else held_out.arrays(seed=FLAGS.seed)[0]
    validation, test, _ = parzen.validation_and_test(train_images, held_out_images, num_test=FLAGS.likelihood_images,
                                                  seed=FLAGS.seed)
    labels = _labels(labels_flag, model, FLAGS.parzen_samples, FLAGS.model_path)
    samples = sample_local(FLAGS.model_path, FLAGS.parzen_samples, labels, FLAGS.seed + 1)
    return {**parzen.parzen_estimate(samples, validation, test), "split": split_name}


def _evaluate_translation(model, source):
    """The report of an image-to-image model on the data's held-out examples (the inputs as the
    baseline). A direction maps domain A to B (the inputs to the targets), or, marked `reverse`
    (CycleGAN's `b_to_a`), the held-out B images to A, judged against domain A."""
    translation = model["translation"]
    direction = FLAGS.direction or translation["default"]
    if direction not in translation["directions"]:
        raise ValueError(f"{FLAGS.model_path} translates {', '.join(translation['directions'])}. Received: {direction}")
    examples = source.info.examples
    if examples is None:
        raise ValueError(f"{FLAGS.dataset} has no held-out examples to translate (it streams from disk)")
    derived = translation.get("inputs_from_targets")
    if examples.inputs is None and derived:  # image data: the inputs are made from the images (SRGAN)
        examples = dataclasses.replace(examples, inputs=bicubic_downsample(examples.targets, derived["scale"]),
                                       input_labels=examples.target_labels, aligned=True)
    elif examples.inputs is None:
        raise ValueError(f"{FLAGS.dataset} is not image-to-image data; {FLAGS.model_path} translates images")
    reverse = translation["directions"][direction].get("reverse", False)
    inputs, labels = (examples.targets, examples.target_labels) if reverse else (examples.inputs, examples.input_labels)
    targets = examples.targets if examples.aligned and not reverse else None
    count = min(FLAGS.num_samples, len(inputs))
    inputs, labels = inputs[:count], None if labels is None else labels[:count]
    target_shape = translation["directions"][direction]["target_shape"]
    outputs = translate_local(FLAGS.model_path, inputs, seed=FLAGS.seed, direction=direction)
    judged = reversed_source(source) if reverse else source
    report = evaluate_translation(outputs, judged, labels=labels, targets=None if targets is None else targets[:count],
                                  baseline=baseline_images(inputs, target_shape), seed=FLAGS.seed)
    report["direction"] = direction
    return report


def _print_translation(report):
    print(f"{FLAGS.model_path} on {FLAGS.dataset}, {report['direction']}: {report['num_samples']} held-out inputs "
          f"({report['classifier']['features']} features)")
    baseline = report["baseline"] or {}
    print(f"  {'metric':<18} {'model':>10} {'baseline':>10} {'floor (real)':>13}")
    for key, name in _PAIRED_ROWS + [row if row[0] != "label_accuracy" else ("label_accuracy", "label preserved")
                                     for row in _ROWS]:
        value = report["generated"].get(key)
        if value is None:
            continue
        floor = report["floor"].get(key)
        base = baseline.get(key)
        print(f"  {name:<18} {value:>10.4f} {'' if base is None else f'{base:.4f}':>10} "
              f"{'' if floor is None else f'{floor:.4f}':>13}")
    print("  (baseline: the inputs themselves, resized bicubically where the sizes differ)")


def _evaluate_melody(source):
    """The melody metrics of songs written over the held-out songs' chord progressions, next to
    the real held-out bars and the random baseline (`gan_tf.metrics.melody_metrics`)."""
    if source.info.modality != "melody":
        raise ValueError(f"{FLAGS.model_path} writes melodies; {FLAGS.dataset} holds {source.info.modality} "
                         "(use bach_chorales or midi:PATH)")
    evaluator = make_evaluator(source, FLAGS.num_samples, seed=FLAGS.seed)
    chords = evaluator.real_chords.reshape(-1, evaluator.song_bars)
    bars = compose_local(FLAGS.model_path, chords, seed=FLAGS.seed)
    report = evaluator.evaluate(bars.reshape(-1, *bars.shape[2:]), chords.reshape(-1))
    report["songs"] = int(len(chords))
    return report


def _print_melody(report):
    print(f"{FLAGS.model_path} on {FLAGS.dataset}: {report['num_samples']} bars in {report['songs']} songs over the "
          "held-out songs' chords")
    print(f"  {'metric':<22} {'model':>8} {'real bars':>10} {'random':>8}")
    for key in MELODY_METRICS:
        print(f"  {key:<22} {report['generated'][key]:>8.3f} {report['floor'][key]:>10.3f} {report['baseline'][key]:>8.3f}")


def _report(report, printer):
    """Prints `report` with `printer` and writes it to --output (JSON); exit status 0."""
    report["model_path"] = FLAGS.model_path
    printer(report)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(report, f, indent=2)
        print(f"Wrote {FLAGS.output}")
    return 0


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model_path:
        return _fail("--model_path is required")
    version = newest_version(FLAGS.model_path)
    if version != FLAGS.model_path:
        FLAGS.model_path = version
        print(f"Evaluating {version}, the newest version of that export")
    if FLAGS.num_samples < 4:
        return _fail(f"--num_samples must be at least 4. Received: {FLAGS.num_samples}")
    if FLAGS.parzen_samples < 0 or (FLAGS.parzen_samples and FLAGS.likelihood_images <= 0):
        return _fail("--parzen_samples must be >= 0, and the estimate scores --likelihood_images held-out images "
                     f"(> 0). Received: --parzen_samples={FLAGS.parzen_samples} "
                     f"--likelihood_images={FLAGS.likelihood_images}")
    try:
        model = describe_model(FLAGS.model_path)
        source = open_source(FLAGS.dataset, data_dir=FLAGS.data_dir, image_size=FLAGS.image_size,
                             channels=FLAGS.channels, crop=FLAGS.crop)
        if model["melody"]:
            return _report(_evaluate_melody(source), _print_melody)
        expected = list(source.info.image_shape)
        if list(model["image_shape"]) != expected:
            return _fail(f"the model makes {model['image_shape']} images, but {FLAGS.dataset} has {expected} "
                         "(pass the --image_size and --channels it was trained with)")
        if model["translation"]:
            return _report(_evaluate_translation(model, source), _print_translation)
        labels = _labels(FLAGS.labels, model, FLAGS.num_samples, FLAGS.model_path)
        embedding = load_inception(FLAGS.inception_weights) if FLAGS.features == "inception" else None
        images = sample_local(FLAGS.model_path, FLAGS.num_samples, labels, FLAGS.seed)
        report = evaluate_samples(images, source, labels=labels, classifier=embedding, seed=FLAGS.seed)
        report["likelihood"] = _likelihood(FLAGS.model_path, model, source, FLAGS.likelihood_images,
                                           FLAGS.likelihood_split, FLAGS.seed)
        if FLAGS.parzen_samples > 0:
            report["parzen"] = _parzen(model, source, FLAGS.labels)
    except (FileNotFoundError, ValueError, gan_data.DatasetError) as error:
        return _fail(error)
    report["model_path"] = FLAGS.model_path
    accuracy = report["classifier"]["test_accuracy"]
    judge = {
        "inception_v3": "Inception-v3 features",
        "random_cnn": "features of a fixed random CNN: the data have no labels to train a classifier on",
    }.get(report["classifier"]["features"], f"classifier features, held-out accuracy {accuracy or 0:.4f}")
    print(f"{FLAGS.model_path} on {FLAGS.dataset}: {report['num_samples']} samples ({judge})")
    print(f"  {'metric':<18} {'generated':>10} {'floor (real)':>13}")
    for key, name in _ROWS:
        if key in report["generated"]:
            print(f"  {name:<18} {report['generated'][key]:>10.4f} {report['floor'][key]:>13.4f}")
    if report["generated"].get("kid_std") is None:
        print("  (KID's spread is undefined here: with at most 1,000 samples every subset is the whole set)")
    likelihood = report["likelihood"]
    if likelihood is not None and likelihood["bits_per_dim"] is None:
        print(f"  {'bits/dim':<18} {'none':>10}   ({likelihood['note']})")
    elif likelihood is not None:
        elbo = f", ELBO {likelihood['elbo_bits_per_dim']:.4f}" if "elbo_bits_per_dim" in likelihood else ""
        print(f"  {'bits/dim':<18} {likelihood['bits_per_dim']:>10.4f}   ({likelihood['images']} {likelihood['split']} "
              f"images{elbo})")
    if "parzen" in report:
        estimate = report["parzen"]
        print(f"  {'Parzen log-lik.':<18} {estimate['log_likelihood']:>10.1f}   nats +- {estimate['standard_error']:.1f} "
              f"({estimate['samples']} samples, sigma {estimate['sigma']:.3f}, {estimate['test_images']} "
              f"{estimate['split']} images)")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(report, f, indent=2)
        print(f"Wrote {FLAGS.output}")
    return 0


if __name__ == "__main__":
    app.run(main)
