"""Measures a trained generator: FID, KID, classifier score, precision/recall, mode coverage and
(conditional models) label accuracy, each next to its floor (the same metric between two halves
of real data). Features come from our own classifier for the dataset (trained and cached on
first use; see gan_tf/evaluation.py).

    python evaluate.py --model_path=saved_models/dcgan/1 --dataset=mnist_5k --num_samples=2000 \\
        --output=metrics.json
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags, logging

from gan_tf import data as gan_data
from gan_tf.evaluation import evaluate_samples
from gan_tf.sampling import describe_model, sample_local

flags.DEFINE_string("model_path", None, "A SavedModel version directory (train.py's export) or a .keras file.")
flags.DEFINE_enum("dataset", "mnist_5k", sorted(gan_data.DATASETS), "The data the model was trained to imitate.")
flags.DEFINE_string("data_dir", None, "Where the dataset's files are, if not the defaults.")
flags.DEFINE_integer("num_samples", 2000, "Samples to generate (capped at half the real data).")
flags.DEFINE_integer("seed", 0, "Seed of the generated noise and of the real halves.")
flags.DEFINE_string("output", None, "Where to write the metrics as JSON.")
FLAGS = flags.FLAGS

_ROWS = [("fid", "FID"), ("kid", "KID"), ("classifier_score", "classifier score"), ("precision", "precision"),
         ("recall", "recall"), ("classes_covered", "classes covered"), ("class_kl_to_real", "class KL to real"),
         ("label_accuracy", "label accuracy")]


def _fail(message):
    print(f"evaluate.py: error: {message}", file=sys.stderr)
    return 2


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model_path:
        return _fail("--model_path is required")
    if FLAGS.num_samples < 4:
        return _fail(f"--num_samples must be at least 4. Received: {FLAGS.num_samples}")
    try:
        model = describe_model(FLAGS.model_path)
        expected = list(gan_data.dataset_info(FLAGS.dataset).image_shape)
        if list(model["image_shape"]) != expected:
            return _fail(f"the model makes {model['image_shape']} images, but {FLAGS.dataset} has {expected}")
        labels = None
        if model["conditional"]:
            labels = np.arange(FLAGS.num_samples) % model["num_classes"]  # balanced classes
        images = sample_local(FLAGS.model_path, FLAGS.num_samples, labels, FLAGS.seed)
        report = evaluate_samples(images, FLAGS.dataset, labels=labels, data_dir=FLAGS.data_dir, seed=FLAGS.seed)
    except (FileNotFoundError, ValueError, gan_data.DatasetError) as error:
        return _fail(error)
    report["model_path"] = FLAGS.model_path
    print(f"{FLAGS.model_path} on {FLAGS.dataset}: {report['num_samples']} samples "
          f"(classifier held-out accuracy {report['classifier']['test_accuracy']:.4f})")
    print(f"  {'metric':<18} {'generated':>10} {'floor (real)':>13}")
    for key, name in _ROWS:
        if key in report["generated"]:
            print(f"  {name:<18} {report['generated'][key]:>10.4f} {report['floor'][key]:>13.4f}")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(report, f, indent=2)
        print(f"Wrote {FLAGS.output}")
    return 0


if __name__ == "__main__":
    app.run(main)
