"""Trains StackGAN on fashion_mnist_captions and measures whether its images say what their captions say.

    python bench/stackgan.py --steps=4000 --models=stackgan,stackgan+conditioning_augmentation=false \
        --grid=docs/stackgan_fashion.png

Each model trains `--steps` steps (10% text encoder, 45% Stage I, 45% Stage II), then draws one
image for each of 2,000 held-out captions (the test split's images, one of each image's captions)
and is scored on them:

* label accuracy: Fashion-MNIST's classifier names the caption's class (goal >= 0.85);
* property accuracy: of the captions that name a brightness (or width), the fraction of images
  whose measured brightness (width) is on the caption's side of its class's training median
  (goal >= 0.80; 0.5 is chance);
* FID and label accuracy of Stage II next to Stage I's images upsampled 2x (goal: Stage II lower);
* diversity for one caption: the mean pairwise distance of the classifier's features over 200
  images of `--diversity_caption` (the paper's claim: conditioning augmentation gives more varied
  images for one text), and the same for the held-out real images the caption fits.

A benchmark, not a test: run nothing else meanwhile.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from bench.common import parse_entry

flags.DEFINE_list("models", ["stackgan", "stackgan+conditioning_augmentation=false"],
                  "Models to train, each `name[+option=value...]` (see bench/quality.py).")
flags.DEFINE_integer("steps", 4000, "Train steps per model.")
flags.DEFINE_integer("num_samples", 2000, "Held-out captions drawn once each.")
flags.DEFINE_string("diversity_caption", "a dark pullover", "The caption of the diversity measurement.")
flags.DEFINE_string("grid", None, "Optional PNG: the first model's preview grid (Stage I | Stage II pairs).")
flags.DEFINE_string("output", None, "Optional JSON output.")
FLAGS = flags.FLAGS


def mean_pairwise_distance(features):
    """The mean Euclidean distance between the rows of `features`, over all pairs."""
    squared = np.sum(features ** 2, axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * features @ features.T, 0.0))
    count = len(features)
    return float(distances.sum() / (count * (count - 1)))


def property_accuracy(images, captions, labels, medians):
    """`{"brightness": acc, "width": acc}` over the captions naming each property."""
    from gan_tf.data import captions as caption_data

    brightness, width = caption_data.measure_properties(images)
    measured = {"brightness": (brightness, medians[0], caption_data.BRIGHTNESS_WORDS),
                "width": (width, medians[1], caption_data.WIDTH_WORDS)}
    accuracy = {}
    for name, (values, class_medians, words) in measured.items():
        hits = []
        for value, caption, label in zip(values, captions, labels):
            said = [index for index, word in enumerate(words) if word in caption.replace(",", "").split()]
            if said:
                hits.append(int(value >= class_medians[label]) == said[0])
        accuracy[name] = float(np.mean(hits)) if hits else None
    return accuracy


def main(argv):
    from gan_tf.data import captions as caption_data
    from gan_tf.data import classifiers
    from gan_tf.metrics import evaluation
    from gan_tf.training.callbacks import sample_grid
    from gan_tf.grids import save_image
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.data import open_source
    from gan_tf.training import TrainConfig, train

    source = open_source("fashion_mnist_captions")
    brightness, width = caption_data.measure_properties(source.images)
    medians = (caption_data.class_medians(brightness, source.labels, 10),
               caption_data.class_medians(width, source.labels, 10))
    classifier = classifiers.load_classifier("fashion_mnist")
    examples = source.info.examples
    count = min(FLAGS.num_samples, len(examples.captions))
    real_property = property_accuracy(examples.images[:count], examples.captions[:count], examples.labels[:count], medians)
    words = FLAGS.diversity_caption.split(" ")
    fits = [i for i, captions in enumerate(source.held_out.captions) if any(c.split(" ") == words for c in captions)]
    real_diversity = mean_pairwise_distance(classifier.features(source.held_out.images[fits[:200]])) if len(fits) > 1 else None
    rows = []
    for index, entry in enumerate(FLAGS.models):
        model_name, overrides = parse_entry(entry)
        with tempfile.TemporaryDirectory() as workdir:
            config = TrainConfig(model=model_name, dataset="fashion_mnist_captions", epochs=1, steps_per_epoch=FLAGS.steps,
                                 eval_every=0, workdir=os.path.join(workdir, "run"),
                                 export_dir=os.path.join(workdir, "export"), verbose=0, **overrides)
            start = time.time()
            model = train(config).model
            seconds = time.time() - start
        samples = model.sample(count, seed=1)
        captions, labels = samples.conditions["captions"], samples.conditions["labels"]
        stage2 = _to_uint8(samples.images, model.value_range)
        stage1 = _to_uint8(model.sample(count, seed=1, stage=1).images, model.value_range)
        report_2 = evaluation.evaluate_samples(stage2, source, labels=labels, classifier=classifier)
        report_1 = evaluation.evaluate_samples(stage1, source, labels=labels, classifier=classifier)
        properties = property_accuracy(stage2, captions, labels, medians)
        one_caption = _to_uint8(model.generate([FLAGS.diversity_caption] * 200, seed=2), model.value_range)
        rows.append({"model": entry, "seconds": round(seconds), "steps": FLAGS.steps,
                     "label_accuracy": report_2["generated"]["label_accuracy"],
                     "brightness_accuracy": properties["brightness"], "width_accuracy": properties["width"],
                     "fid_stage2": report_2["generated"]["fid"], "fid_stage1_upsampled": report_1["generated"]["fid"],
                     "label_accuracy_stage1": report_1["generated"]["label_accuracy"],
                     "diversity": mean_pairwise_distance(classifier.features(one_caption))})
        if FLAGS.grid and index == 0:
            save_image(FLAGS.grid, sample_grid(model, 10, 8, seed=1234))
        print(f"{entry}: done in {seconds:.0f}s", flush=True)

    print(f"\nfashion_mnist_captions, {FLAGS.steps} steps per model, {count} held-out captions, classifier test "
          f"accuracy {classifier.test_accuracy:.3f}, {os.cpu_count()} cores")
    print("| model | wall s | label acc. | brightness acc. | width acc. | FID stage II | FID stage I (2x up) | "
          "label acc. stage I | diversity of one caption |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['model']} | {r['seconds']} | {r['label_accuracy']:.3f} | {r['brightness_accuracy']:.3f} | "
              f"{r['width_accuracy']:.3f} | {r['fid_stage2']:.1f} | {r['fid_stage1_upsampled']:.1f} | "
              f"{r['label_accuracy_stage1']:.3f} | {r['diversity']:.2f} |")
    floor = report_2["floor"]
    print(f"| real held-out images | - | {floor.get('label_accuracy') or 0:.3f} | {real_property['brightness']:.3f} | "
          f"{real_property['width']:.3f} | {floor['fid']:.1f} | - | - | "
          f"{'-' if real_diversity is None else format(real_diversity, '.2f')} |")
    if FLAGS.output:
        import json

        with open(FLAGS.output, "w") as f:
            json.dump({"rows": rows, "real_property": real_property, "real_diversity": real_diversity}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
