"""Classifier-free guidance: how often does the conditional PixelCNN draw the asked class, and at
what cost in diversity, as the guidance weight grows?

    python bench/guidance.py --epochs=6 --guidance=0,1,2,3 \
        --models=conditional_pixelcnn+label_dropout=0,conditional_pixelcnn+label_dropout=0.1

Trains each entry once (`train.py`'s path: `gan_tf.training.train`, seeded) for `--epochs`, then
samples `--num_samples` images, classes in turn, at each guidance weight w (`model.guidance = w`;
an entry without label dropout has no unconditional model, so only w = 0) and prints per row:
label accuracy (the dataset's own classifier), FID, KID, precision, recall, classes covered and
milliseconds per sampled image; bits/dim on `--likelihood_images` held-out test images once per
entry (the training images for data without a test split; the likelihood is the conditional
model's: guidance changes sampling only).

Entries are `name+key=value+...` as in bench/quality.py (a TrainConfig field, or else a model
argument). A benchmark, not a test: the figures do not depend on what else runs (training is
seeded), wall times do.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

from bench.common import held_out_source, parse_entry  # noqa: E402

flags.DEFINE_list("models", ["conditional_pixelcnn+label_dropout=0", "conditional_pixelcnn+label_dropout=0.1"],
                  "Entries `name+key=value+...` (a TrainConfig field or a model argument).")
flags.DEFINE_string("dataset", "mnist_5k", "Dataset to train and evaluate on.")
flags.DEFINE_integer("epochs", 6, "Training epochs per entry.")
flags.DEFINE_list("guidance", ["0", "1", "2", "3"], "Guidance weights to sample with.")
flags.DEFINE_integer("num_samples", 1000, "Samples evaluated per row.")
flags.DEFINE_integer("likelihood_images", 1000, "Held-out test images for bits per dimension.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np

    from gan_tf.data import classifiers
    from gan_tf.metrics import evaluation
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.training import TrainConfig, train

    classifier = classifiers.load_classifier(FLAGS.dataset)
    held_out, held_out_split = held_out_source(FLAGS.dataset)
    held_out_images, held_out_labels = held_out.arrays(max_examples=FLAGS.likelihood_images, seed=0)
    columns = "| model | epochs | train s | bits/dim | guidance | label acc. | FID | KID | precision | recall | classes >= 4% | ms/image |"
    rows = []
    for entry in FLAGS.models:
        name, overrides = parse_entry(entry)
        with tempfile.TemporaryDirectory() as workdir:
            config = TrainConfig(model=name, dataset=FLAGS.dataset, epochs=FLAGS.epochs, workdir=os.path.join(workdir, "run"),
                                 export_dir=os.path.join(workdir, "export"), eval_every=0, verbose=0, **overrides)
            start = time.time()
            model = train(config).model
            seconds = time.time() - start
        bits = float(np.mean(model.log_likelihood(held_out_images, {"labels": held_out_labels})["bits_per_dim"]))
        for weight in [float(w) for w in FLAGS.guidance]:
            if weight and not model.label_dropout:
                continue
            model.guidance = weight
            model.sample(2, seed=0)  # trace the sampling graph before timing it
            sampling = time.time()
            samples = model.sample(FLAGS.num_samples, seed=1)
            sample_ms = 1000 * (time.time() - sampling) / FLAGS.num_samples
            report = evaluation.evaluate_samples(_to_uint8(samples.images, model.value_range), FLAGS.dataset,
                                                 labels=samples.conditions["labels"], classifier=classifier)
            generated = report["generated"]
            row = (f"| {entry} | {FLAGS.epochs} | {seconds:.0f} | {bits:.3f} | {weight:g} | {generated['label_accuracy']:.3f} | "
                   f"{generated['fid']:.1f} | {generated['kid']:.2f} | {generated['precision']:.3f} | "
                   f"{generated['recall']:.3f} | {int(np.sum(np.array(generated['class_histogram']) >= 0.04))} | {sample_ms:.1f} |")
            rows.append(row)
            print(row, flush=True)
    print(f"\n{FLAGS.dataset}, {FLAGS.epochs} epochs, {FLAGS.num_samples} samples, classifier test accuracy "
          f"{classifier.test_accuracy:.3f}, floor FID {report['floor']['fid']:.1f}, bits/dim on "
          f"{len(held_out_images)} {held_out_split} images, {os.cpu_count()} cores")
    print(columns)
    print("| --- " * 12 + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
