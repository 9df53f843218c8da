"""Trains each model on mnist_5k with the quickstart budget and prints one quality table.

    python bench/quality.py --epochs=20 --num_samples=2000 --output=quality.json

Columns: model, epochs, wall time, FID, KID, precision, recall, classes covered (each class at
least 4% of the samples), smallest class share, label accuracy (conditional models). The first
row is an untrained generator; the last is the floor (real half vs real half). A benchmark, not
a test: it takes about 20 minutes on 2 CPU cores.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

flags.DEFINE_list("models", ["mlp_gan", "dcgan", "cgan"], "Models to train.")
flags.DEFINE_integer("epochs", 20, "Epochs per model (the quickstart's 20).")
flags.DEFINE_integer("num_samples", 2000, "Samples evaluated per model.")
flags.DEFINE_string("output", None, "Optional JSON output.")
FLAGS = flags.FLAGS


def _row(name, epochs, seconds, report):
    generated = report["generated"]
    return {
        "model": name,
        "epochs": epochs,
        "seconds": round(seconds),
        "fid": generated["fid"],
        "kid": generated["kid"],
        "precision": generated["precision"],
        "recall": generated["recall"],
        "classes_covered_4pct": int(np.sum(np.array(generated["class_histogram"]) >= 0.04)),
        "smallest_class_share": min(generated["class_histogram"]),
        "label_accuracy": generated.get("label_accuracy"),
    }


def main(argv):
    from gan_tf import evaluation
    from gan_tf.models import MODELS
    from gan_tf.sampling import _to_uint8
    from gan_tf.training import TrainConfig, train

    classifier = evaluation.load_classifier("mnist_5k")
    rows = []
    untrained = MODELS["dcgan"](seed=0)
    images = _to_uint8(untrained.generate(FLAGS.num_samples, seed=1), untrained.value_range)
    report = evaluation.evaluate_samples(images, "mnist_5k", classifier=classifier)
    rows.append(_row("untrained dcgan", 0, 0, report))
    for name in FLAGS.models:
        with tempfile.TemporaryDirectory() as workdir:
            config = TrainConfig(model=name, epochs=FLAGS.epochs, workdir=os.path.join(workdir, "run"),
                                 export_dir=os.path.join(workdir, "export"), verbose=0)
            start = time.time()
            gan = train(config).model
            seconds = time.time() - start
        labels = np.arange(FLAGS.num_samples) % gan.num_classes if gan.conditional else None
        samples = gan.generate(labels=labels, seed=1) if gan.conditional else gan.generate(FLAGS.num_samples, seed=1)
        report = evaluation.evaluate_samples(_to_uint8(samples, gan.value_range), "mnist_5k", labels=labels,
                                             classifier=classifier)
        rows.append(_row(name, FLAGS.epochs, seconds, report))
        print(f"{name}: done in {seconds:.0f}s", flush=True)
    floor = _row("real (floor)", 0, 0, {"generated": report["floor"]})
    rows.append(floor)

    print(f"\nmnist_5k, {FLAGS.num_samples} samples, classifier held-out accuracy {classifier.test_accuracy:.3f}, "
          f"{os.cpu_count()} cores")
    print("| model | epochs | wall s | FID | KID | precision | recall | classes >= 4% | smallest class | label acc. |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        label = "-" if r["label_accuracy"] is None else f"{r['label_accuracy']:.3f}"
        print(f"| {r['model']} | {r['epochs']} | {r['seconds']} | {r['fid']:.1f} | {r['kid']:.2f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} | {r['classes_covered_4pct']} | "
              f"{r['smallest_class_share']:.3f} | {label} |")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
