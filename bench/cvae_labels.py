"""Does a CVAE draw the class it is asked for, and if not, where does the class go?

    python bench/cvae_labels.py --epochs=10 \
        --models=cvae+class_prior=false,cvae+class_prior=false+latent_dim=4,cvae
    python bench/cvae_labels.py --epochs=10 --models=cvae --temperatures=1,0.8,0.6
    python bench/cvae_labels.py --dataset=fashion_mnist --epochs=2 --models=cvae --temperatures=1,0.7

Trains each CVAE on `--dataset` (mnist_5k) for `--epochs` (seeded) and prints, per model:
- label accuracy of samples: z from the prior, the class asked for; judged by the dataset's
  classifier (the quality metrics' own);
- the swap test: real digits are encoded with their own label and decoded from the posterior
  mean with another label; the share the classifier then reads as the new label (the decoder
  obeys the label) and as the digit's own class (z carried the class, the label was ignored);
- decoded from the prior's centre (z = 0, or the class's mean with a class prior): label accuracy
  of one image per class;
- bits/dim: the negative ELBO of the last epoch (training images, an upper bound) and the
  importance-weighted bound on `--likelihood_images` images (what bench/quality.py reports).

With `--temperatures`, a second table: per model and sampling temperature t (`model.temperature
= t`: z drawn from the prior with its spread times t), label accuracy, FID, KID, precision and
recall of the samples (the quality metrics of bench/quality.py): what a cooler prior buys in
obedience and costs in diversity.

Entries are `cvae+name=value+...` (model arguments, as train.py's --model_arg). A benchmark,
not a test; the figures do not depend on what else runs (training is seeded), wall times do.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
from absl import app, flags

from gan_tf import CVAE
from gan_tf.data import load_arrays, load_dataset
from gan_tf.data.classifiers import load_classifier
from gan_tf.metrics import evaluation
from gan_tf.models.generative import parse_model_args
from gan_tf.serving.sampling import _to_uint8

flags.DEFINE_string("dataset", "mnist_5k", "Labelled dataset to train on and judge with (its classifier).")
flags.DEFINE_list("models", ["cvae+class_prior=false", "cvae"], "CVAE entries, `cvae+name=value+...`.")
flags.DEFINE_integer("epochs", 10, "Training epochs per model.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("num_samples", 2000, "Prior samples judged (classes in turn).")
flags.DEFINE_integer("swap_images", 1000, "Real digits in the swap test.")
flags.DEFINE_integer("likelihood_images", 1000, "Images for the importance-weighted bound.")
flags.DEFINE_list("temperatures", [], "Sampling temperatures for the second table (none: no second table).")
FLAGS = flags.FLAGS


def _predicted(classifier, images, value_range):
    return classifier.probabilities(_to_uint8(images, value_range)).argmax(axis=1)


def measure(entry, classifier, images, labels):
    name, *options = entry.split("+")
    if name != "cvae":
        raise app.UsageError(f"--models entries are cvae[+name=value...]. Received: {entry!r}")
    keras.utils.set_random_seed(0)
    model = CVAE(num_classes=10, seed=0, **parse_model_args(options))
    model.compile_optimizers(model.default_optimizers())
    start = time.time()
    history = model.fit(load_dataset(FLAGS.dataset, FLAGS.batch_size, value_range=model.value_range, seed=0),
                        epochs=FLAGS.epochs, verbose=0)
    seconds = time.time() - start

    samples = model.sample(FLAGS.num_samples, seed=1)
    sample_accuracy = np.mean(_predicted(classifier, samples.images, model.value_range) == samples.conditions["labels"])
    rng = np.random.default_rng(2)
    digits, own = images[: FLAGS.swap_images], labels[: FLAGS.swap_images]
    other = (own + rng.integers(1, 10, size=own.shape)) % 10
    mean, _ = model.posterior(model.scaled(digits), own)
    swapped = _predicted(classifier, model.decode(mean, other), model.value_range)
    centres = _predicted(classifier, model.decode(np.zeros((10, model.latent_dim), np.float32), np.arange(10)),
                         model.value_range)
    held = images[-FLAGS.likelihood_images :], labels[-FLAGS.likelihood_images :]
    bound = model.log_likelihood(held[0], {"labels": held[1]})["bits_per_dim"].mean()
    temperature_rows = []
    for temperature in [float(t) for t in FLAGS.temperatures]:
        model.temperature = temperature
        cooled = model.sample(FLAGS.num_samples, seed=1)
        generated = evaluation.evaluate_samples(_to_uint8(cooled.images, model.value_range), FLAGS.dataset,
                                                labels=cooled.conditions["labels"], classifier=classifier)["generated"]
        temperature_rows.append(f"| {entry} | {temperature:g} | {generated['label_accuracy']:.3f} | {generated['fid']:.1f} | "
                                f"{generated['kid']:.2f} | {generated['precision']:.3f} | {generated['recall']:.3f} |")
    return {
        "model": entry, "updates": int(model.optimizer.iterations), "seconds": round(seconds),
        "label_accuracy": sample_accuracy, "swap_new_label": np.mean(swapped == other),
        "swap_own_class": np.mean(swapped == own), "centre_accuracy": np.mean(centres == np.arange(10)),
        "elbo_bits": float(history.history["bits_per_dim"][-1]), "iwae_bits": float(bound),
    }, temperature_rows


def main(argv):
    del argv
    classifier = load_classifier(FLAGS.dataset)
    images, labels = load_arrays(FLAGS.dataset)
    columns = ["model", "updates", "seconds", "label_accuracy", "swap_new_label", "swap_own_class",
               "centre_accuracy", "elbo_bits", "iwae_bits"]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    temperature_rows = []
    for entry in FLAGS.models:
        row, rows_of_entry = measure(entry, classifier, images, labels)
        temperature_rows += rows_of_entry
        print("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |",
              flush=True)
    if temperature_rows:
        print("\n| model | temperature | label acc. | FID | KID | precision | recall |\n" + "| --- " * 7 + "|")
        print("\n".join(temperature_rows))


if __name__ == "__main__":
    app.run(main)
