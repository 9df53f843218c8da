"""Where a LAPGAN's distance from real data comes from, level by level. One seeded training run
per entry; evaluation is not counted.

    python bench/lapgan_levels.py --epochs=10 --models=lapgan+levels=3,lapgan

Each entry trains `train.py`'s LAPGAN with the entry's settings (`+name=value` sets a `TrainConfig`
field or a model argument, as in bench/quality.py), then scores, on `--num_samples` images, with
the data's classifier (FID, precision, recall, sharpness; `gan_tf.metrics.evaluation`):

* `samples`: the model's own samples (the pyramid composed from level 0);
* `real level k, then G`: the real Gaussian pyramid's level k, refined by the finer levels'
  generators (those that sample: the average of G's weights, if the model keeps one; with their
  own noise) up to full size: how good the finer levels are
  given a perfect coarser image, so the levels can be told apart;
* `G_0 upsampled` and `real level 0 upsampled`: level 0's samples and the real coarsest images,
  upsampled to full size without any residual: how close level 0 is to its own target;
* the residuals' standard deviation, generated beside real, per finer level: faint residuals
  show as a smaller spread.

The real images are `--num_samples` drawn (seed 3) from the training data.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_list("models", ["lapgan"], "Entries `lapgan[+name=value...]`, as bench/quality.py's.")
flags.DEFINE_string("dataset", "mnist_5k", "A built-in dataset to train and evaluate on.")
flags.DEFINE_integer("epochs", 10, "Epochs to train each entry.")
flags.DEFINE_integer("num_samples", 2000, "Images per evaluation.")
FLAGS = flags.FLAGS


def main(argv):
    import tempfile

    import numpy as np
    import tensorflow as tf

    from bench.common import parse_entry
    from gan_tf.data import builtin, classifiers
    from gan_tf.metrics import evaluation
    from gan_tf.models.lapgan import split_noise
    from gan_tf.nn import pyramid
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.training import TrainConfig, train

    classifier = classifiers.load_classifier(FLAGS.dataset)
    real, _ = builtin.load_arrays(FLAGS.dataset)
    picked = np.random.default_rng(3).choice(len(real), FLAGS.num_samples, replace=False)
    real = real[picked].astype(np.float32) / 127.5 - 1.0

    for entry in FLAGS.models:
        with tempfile.TemporaryDirectory() as workdir:
            model, overrides = parse_entry(entry)
            if model != "lapgan":
                raise app.UsageError(f"--models entry {entry!r}: this bench reads a LAPGAN's levels")
            config = TrainConfig(model=model, dataset=FLAGS.dataset, epochs=FLAGS.epochs, seed=0,
                                 workdir=os.path.join(workdir, "run"), export_dir=os.path.join(workdir, "export"),
                                 eval_every=0, verbose=0, **overrides)
            gan = train(config).model

        def score(name, images):
            report = evaluation.evaluate_samples(_to_uint8(np.clip(images, -1.0, 1.0), gan.value_range), FLAGS.dataset,
                                                 classifier=classifier)["generated"]
            print(f"| {entry} | {name} | {report['fid']:.1f} | {report['precision']:.3f} | {report['recall']:.3f} "
                  f"| {report['sharpness']:.2f} |", flush=True)

        def to_full_size(images):
            images = tf.constant(images)
            while images.shape[1] < gan.image_shape[0]:
                images = pyramid.upsample(images)
            return images.numpy()

        real_levels = [level.numpy() for level in pyramid.gaussian_pyramid(tf.constant(real), gan.levels)]
        codes = split_noise(tf.constant(gan.draw_noise(FLAGS.num_samples, 5)), gan.coarse_latent_dim, gan.level_shapes)

        def refine(level, images):
            """The trained finer generators applied from the real pyramid's `level` up."""
            images = tf.constant(images)
            for generator, plane in zip(gan.sampling_level_generators[level + 1:], codes[level + 1:]):
                upsampled = pyramid.upsample(images)
                images = tf.clip_by_value(upsampled + generator([upsampled, plane], training=False), -1.0, 1.0)
            return images.numpy()

        print(f"\n| entry | images | FID | precision | recall | sharpness |\n| --- | --- | ---: | ---: | ---: | ---: |")
        levels = gan.sample_levels(FLAGS.num_samples, seed=1)
        score("samples", levels[-1])
        for level in range(gan.levels - 1):
            score(f"real level {level} ({real_levels[level].shape[1]} px), then G", refine(level, real_levels[level]))
        score("G_0 upsampled", to_full_size(levels[0]))
        score("real level 0 upsampled", to_full_size(real_levels[0]))
        score("real images", real)
        for k in range(1, gan.levels):
            spread = [float(np.std(images[k] - pyramid.upsample(tf.constant(images[k - 1])).numpy()))
                      for images in (levels, real_levels)]
            print(f"{entry}: level {k} residual std {spread[0]:.3f} generated, {spread[1]:.3f} real", flush=True)


if __name__ == "__main__":
    app.run(main)
