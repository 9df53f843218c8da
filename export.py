"""Exports a `.keras` checkpoint (any gan_tf model; a GAN's generator) as a versioned SavedModel for TF Serving.

    python export.py --checkpoint=runs/dcgan/checkpoints/epoch_0020.keras --export_dir=saved_models/dcgan
    python export.py --checkpoint=runs/cgan/checkpoints/epoch_0020.keras --export_dir=saved_models/cgan_raw \
        --model_arg=sample_from_average=false     # G's own weights, not their moving average
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from absl import app, flags, logging

from gan_tf.models.generative import parse_model_args, with_model_args
from gan_tf.serving.export import export_model

flags.DEFINE_string("checkpoint", None, "A .keras file saved by gan_tf (train.py's checkpoints/epoch_NNNN.keras).")
flags.DEFINE_string("export_dir", None, "The model's base path; the export goes to <export_dir>/<next version>.")
flags.DEFINE_list("class_names", None, "Optional class names recorded in the export's metadata.")
flags.DEFINE_multi_string("model_arg", [], "NAME=VALUE: export the model with this constructor argument changed, "
                          "one that keeps its weights (repeatable); e.g. sample_from_average=false exports a "
                          "GAN's own generator instead of the moving average of its weights.")

FLAGS = flags.FLAGS


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.checkpoint or not FLAGS.export_dir:
        print("export.py: error: --checkpoint and --export_dir are required", file=sys.stderr)
        return 2
    if not os.path.isfile(FLAGS.checkpoint):
        print(f"export.py: error: no checkpoint at {FLAGS.checkpoint}", file=sys.stderr)
        return 2
    model = keras.saving.load_model(FLAGS.checkpoint, safe_mode=True)
    try:
        model = with_model_args(model, parse_model_args(FLAGS.model_arg))
        path = export_model(model, FLAGS.export_dir, class_names=FLAGS.class_names)
    except ValueError as error:
        print(f"export.py: error: {error}", file=sys.stderr)
        return 2
    print(f"Exported: {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
