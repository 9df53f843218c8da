"""Trains a GAN from the command line.

    python train.py --model=dcgan --dataset=mnist_5k --epochs=20 --workdir=runs/dcgan

Flags become a `gan_tf.training.TrainConfig`; `gan_tf.training.train` does the rest.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter

from absl import app, flags, logging

from gan_tf import data as gan_data
from gan_tf.callbacks import NonFiniteLossError
from gan_tf.distribute import STRATEGIES
from gan_tf.models import MODELS
from gan_tf.training import MIXED_PRECISION, TrainConfig, train

_DEFAULTS = TrainConfig()

flags.DEFINE_enum("model", _DEFAULTS.model, list(MODELS), "Which GAN to train.")
flags.DEFINE_enum("dataset", _DEFAULTS.dataset, sorted(gan_data.DATASETS), "Training data.")
flags.DEFINE_string("data_dir", None, "Directory of the dataset's original files (IDX .gz, CIFAR-10 .bin) or a tfds data_dir.")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Passes over the data.")
flags.DEFINE_integer("steps_per_epoch", None, "Cap on steps per epoch (default: the whole dataset).")
flags.DEFINE_integer("batch_size", None, "Global batch size, split across replicas (default: the model's, 64; 128 for mlp_gan).")
flags.DEFINE_integer("latent_dim", _DEFAULTS.latent_dim, "Size of the noise vector z.")
flags.DEFINE_float("d_learning_rate", None, "Discriminator learning rate (default: the model's).")
flags.DEFINE_float("g_learning_rate", None, "Generator learning rate (default: the model's).")
flags.DEFINE_float("real_label", None, "D's target on real images, in (0, 1] (default: the model's, 0.9: one-sided smoothing; critics have none).")
flags.DEFINE_integer("d_steps", None, "Discriminator updates per generator update (default: the model's; 1, or 5 for wgan_gp).")
flags.DEFINE_float("ema_decay", None, "Sample and export from a moving average of G's weights with this decay, e.g. 0.999 (default: the model's: 0.999 for cgan and biggan, off for the others; 0 samples from G's own weights).")
flags.DEFINE_float("mismatch_weight", None, "cgan only: weight of D's term that rejects real images paired with wrong labels (default 1; 0 for the plain CGAN game).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed (weights, data order, noise).")
flags.DEFINE_integer("eval_every", _DEFAULTS.eval_every, "Log FID and the other quality metrics to TensorBoard every N epochs (0: never).")
flags.DEFINE_integer("eval_samples", _DEFAULTS.eval_samples, "Samples per quality evaluation.")
flags.DEFINE_string("workdir", None, "Run outputs: logs/ (TensorBoard), samples/, checkpoints/, loss_curves.png (default: runs/<model>).")
flags.DEFINE_string("export_dir", None, "SavedModel base path (default: saved_models/<model>).")
flags.DEFINE_enum("strategy", _DEFAULTS.strategy, list(STRATEGIES), "default: one device; mirrored: all GPUs (or --cpu_devices); multi_worker: the machines in TF_CONFIG.")
flags.DEFINE_integer("cpu_devices", None, "With --strategy=mirrored on a machine without GPUs: split the CPU into N logical devices.")
flags.DEFINE_integer("steps_per_execution", None, "Train steps per tf.function call (default: the model's; 16 for mlp_gan, 1 for the others). Same results, less per-step overhead.")
flags.DEFINE_bool("jit_compile", _DEFAULTS.jit_compile, "Compile the train step with XLA (slower on CPU; try it on GPUs).")
flags.DEFINE_enum("mixed_precision", _DEFAULTS.mixed_precision, list(MIXED_PRECISION), "Compute in float16 (with loss scaling) or bfloat16, keep float32 weights (for GPUs; slower on CPU).")
flags.DEFINE_bool("resume", True, "Continue from the newest checkpoint in --workdir if there is one.")

FLAGS = flags.FLAGS


def config_from_flags():
    return TrainConfig(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        batch_size=FLAGS.batch_size,
        latent_dim=FLAGS.latent_dim,
        d_learning_rate=FLAGS.d_learning_rate,
        g_learning_rate=FLAGS.g_learning_rate,
        real_label=FLAGS.real_label,
        d_steps=FLAGS.d_steps,
        ema_decay=FLAGS.ema_decay,
        mismatch_weight=FLAGS.mismatch_weight,
        seed=FLAGS.seed,
        eval_every=FLAGS.eval_every,
        eval_samples=FLAGS.eval_samples,
        workdir=FLAGS.workdir,
        export_dir=FLAGS.export_dir,
        strategy=FLAGS.strategy,
        cpu_devices=FLAGS.cpu_devices,
        resume=FLAGS.resume,
        steps_per_execution=FLAGS.steps_per_execution,
        jit_compile=FLAGS.jit_compile,
        mixed_precision=FLAGS.mixed_precision,
    )


def _fail(message, exit_code):
    print(f"train.py: error: {message}", file=sys.stderr)
    return exit_code


def main(argv):
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}", exit_code=2)
    logging.set_verbosity(logging.WARNING)  # keep SavedModel-writing INFO lines off the console
    config = config_from_flags()
    try:
        config.validate()
    except ValueError as error:
        return _fail(error, exit_code=2)
    try:
        result = train(config)
    except (gan_data.DatasetError, NonFiniteLossError, ValueError) as error:
        return _fail(error, exit_code=1)
    print(f"Trained in {result.seconds:.0f}s.")
    if result.metrics:
        generated, floor = result.metrics["generated"], result.metrics["floor"]
        print(f"FID after epoch {result.metrics['epoch']}: {generated['fid']:.1f} (real data: {floor['fid']:.1f}).")
    print(f"Samples:    {result.samples_dir}/")
    print(f"TensorBoard: tensorboard --logdir {config.resolved().workdir}")
    print(f"Checkpoint: {result.checkpoint_path}")
    if result.export_path:  # only the chief exports
        print(f"Exported:   {result.export_path}")
    return 0


if __name__ == "__main__":
    app.run(main)
