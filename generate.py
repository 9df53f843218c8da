"""Draws a grid of samples from a trained generator, locally or through TensorFlow Serving.

    python generate.py --model_path=saved_models/dcgan/1 --num_samples=64 --output=grid.png
    python generate.py --model_path=runs/cgan/checkpoints/epoch_0020.keras --labels=7 --output=sevens.png
    python generate.py --server=localhost:8500 --model_name=cgan --labels=0,1,2 --output=grid.png
    python generate.py --model_path=saved_models/biggan/1 --labels=6 --truncation=1.0 --output=shirts.png
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags

from gan_tf.callbacks import image_grid, save_image
from gan_tf.client import ServingError
from gan_tf.sampling import sample_local, sample_remote

flags.DEFINE_string("model_path", None, "A SavedModel version directory or a .keras file (local sampling).")
flags.DEFINE_string("server", None, "TF Serving host:port (8500 for grpc, 8501 for rest) instead of --model_path.")
flags.DEFINE_string("model_name", None, "The model's name on the server (default: --model_path's parent name).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "How to talk to --server.")
flags.DEFINE_integer("num_samples", 64, "How many images.")
flags.DEFINE_list("labels", None, "Conditional models: one label for all, or a list cycled over the samples.")
flags.DEFINE_integer("seed", None, "Seed for reproducible noise.")
flags.DEFINE_float(
    "truncation", None, "Truncation trick: noise truncated to [-t, t] (BigGAN exports, any .keras GAN; 0 = none)."
)
flags.DEFINE_integer("columns", 8, "Images per row of the grid.")
flags.DEFINE_string("output", "samples.png", "Where to write the PNG grid.")

FLAGS = flags.FLAGS


def _fail(message):
    print(f"generate.py: error: {message}", file=sys.stderr)
    return 2


def main(argv):
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if bool(FLAGS.model_path) == bool(FLAGS.server):
        return _fail("give exactly one of --model_path (local) or --server (TF Serving)")
    if FLAGS.num_samples < 1:
        return _fail(f"--num_samples must be at least 1. Received: {FLAGS.num_samples}")
    try:
        labels = [int(label) for label in FLAGS.labels] if FLAGS.labels else None
    except ValueError:
        return _fail(f"--labels must be integers. Received: {','.join(FLAGS.labels)}")
    try:
        if FLAGS.server:
            if not FLAGS.model_name:
                return _fail("--server needs --model_name")
            images = sample_remote(
                FLAGS.server, FLAGS.model_name, FLAGS.num_samples, labels, FLAGS.seed, FLAGS.protocol, FLAGS.truncation
            )
        else:
            images = sample_local(FLAGS.model_path, FLAGS.num_samples, labels, FLAGS.seed, FLAGS.truncation)
    except (FileNotFoundError, ValueError, ServingError) as error:
        return _fail(error)
    save_image(FLAGS.output, image_grid(images.astype(np.float32), (0.0, 255.0), FLAGS.columns))
    print(f"Wrote {len(images)} samples to {FLAGS.output}")
    return 0


if __name__ == "__main__":
    app.run(main)
