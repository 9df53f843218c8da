"""Trains a model (by default the self-conditioned GAN) from the command line.

    python train.py --model=dcgan --dataset=mnist_5k --epochs=20 --workdir=runs/dcgan

Flags become a `gan_tf.training.TrainConfig`; `gan_tf.training.train` does the rest.
"""

import contextlib
import os
import sys

# Hide TensorFlow's C++ log: on a machine without a GPU its CUDA probe logs "failed call to
# cuInit ... UNKNOWN ERROR (303)" and Grappler an optimizer note, both at error level though
# nothing is wrong. Errors that matter reach the user as Python exceptions. Set it to 0 to see all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_native_stderr():
    """With TensorFlow's log hidden, also hide what its C++ start-up writes to stderr before it
    reads that setting ("WARNING: All log messages before absl::InitializeLog() ...", oneDNN and
    CUDA-driver notes). Python errors are still raised, and shown once stderr is back."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_native_stderr():
    import tensorflow  # noqa: F401  (its native start-up, here)
    from absl import app, flags, logging

    from gan_tf import data as gan_data
    from gan_tf.training.callbacks import CheckpointWriteError, NonFiniteLossError, TrainingPreempted
    from gan_tf.training.distribute import STRATEGIES
    from gan_tf.models.generative import parse_model_args
    from gan_tf.models import MODELS
    from gan_tf.training.monitoring import quality_summary, time_summary
    from gan_tf.data.source import CROPS
    from gan_tf.training import MIXED_PRECISION, TrainConfig, train

_DEFAULTS = TrainConfig()

flags.DEFINE_enum("model", _DEFAULTS.model, list(MODELS), "Which model to train.")
flags.DEFINE_string("dataset", _DEFAULTS.dataset, f"Training data: a built-in ({', '.join(sorted(gan_data.DATASETS))}), folder:PATH (a directory of images; one sub-folder per class makes it labelled) or tfds:NAME[:SPLIT].")
flags.DEFINE_string("data_dir", None, "Directory of a built-in dataset's original files (IDX .gz, CIFAR-10 .bin), or a tfds data_dir.")
flags.DEFINE_string("image_size", None, "Train at S x S (or HxW): the shorter side is scaled to S, then the centre is cut out (see --crop). Default: the data's own size.")
flags.DEFINE_integer("channels", None, "1 (greyscale) or 3 (RGB); converts either way (default: the data's own).")
flags.DEFINE_enum("crop", _DEFAULTS.crop, list(CROPS), "center: keep the aspect ratio and cut out the centre; none: stretch to --image_size.")
flags.DEFINE_string("cache_dir", None, "Cache decoded images of data that stream from disk here (default: no cache).")
flags.DEFINE_integer("max_image_pixels", _DEFAULTS.max_image_pixels, "Skip image files whose decoded pixels would be more (a large JPEG is first decoded at a reduced scale); the default admits a 100-megapixel photo.")
flags.DEFINE_multi_string("model_arg", [], "NAME=VALUE: a constructor argument of the model, e.g. --model_arg=gp_weight=5 (repeatable; values parse as int, float, true/false, none or text).")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Passes over the data.")
flags.DEFINE_integer("steps_per_epoch", None, "Cap on steps per epoch (default: the whole dataset).")
flags.DEFINE_integer("batch_size", None, "Global batch size, split across replicas (default: the model's, 64; 128 for mlp_gan).")
flags.DEFINE_integer("latent_dim", None, "Size of the noise vector z (default: the model's; 100, or 120 for biggan).")
flags.DEFINE_float("d_learning_rate", None, "Learning rate of every discriminator (default: the model's; "
                   "a schedule starts from it).")
flags.DEFINE_float("g_learning_rate", None, "Learning rate of every generator (default: the model's; "
                   "a schedule starts from it).")
flags.DEFINE_float("real_label", None, "Shorthand for --model_arg=real_label=X: D's target on real images, in (0, 1] (default: the model's, 0.9: one-sided smoothing; critics have none).")
flags.DEFINE_integer("d_steps", None, "Shorthand for --model_arg=d_steps=N: discriminator updates per generator update (default: the model's; 1, or 5 for wgan_gp).")
flags.DEFINE_string("augment", None, "Shorthand for --model_arg=augment=OPS: show D every image (real and generated) through DiffAugment's differentiable OPS, a comma-separated subset of color,translation,cutout (image GANs but LAPGAN; default: none).")
flags.DEFINE_float("ema_decay", None, "Shorthand for --model_arg=ema_decay=D: sample and export from a moving average of G's weights with this decay (default: the model's: 0.999 for every image GAN but lapgan; 0 samples from G's own weights, --model_arg=ema_decay=none keeps no average).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed (weights, data order, noise).")
flags.DEFINE_integer("eval_every", _DEFAULTS.eval_every, "Log FID and the other quality metrics to TensorBoard every N epochs (0: never).")
flags.DEFINE_integer("eval_samples", _DEFAULTS.eval_samples, "Samples per quality evaluation.")
flags.DEFINE_integer("max_examples", None, "Train on a seeded draw of at most this many images of the data (small data on purpose; the metrics still judge against all of it). Image data only.")
flags.DEFINE_string("inception_weights", None, "Keras's Inception-v3 ImageNet weights file: quality metrics use its features (default: the dataset's own classifier, or for unlabelled data a fixed random CNN's).")
flags.DEFINE_string("workdir", None, "Run outputs: logs/ (TensorBoard), samples/, checkpoints/, loss_curves.png (default: runs/<model>).")
flags.DEFINE_string("export_dir", None, "SavedModel base path (default: saved_models/<model>).")
flags.DEFINE_enum("strategy", _DEFAULTS.strategy, list(STRATEGIES), "default: one device; mirrored: all GPUs (or --cpu_devices); multi_worker: the machines in TF_CONFIG.")
flags.DEFINE_integer("cpu_devices", None, "With --strategy=mirrored on a machine without GPUs: split the CPU into N logical devices.")
flags.DEFINE_integer("steps_per_execution", None, "Train steps per tf.function call (default: the model's; 16 for mlp_gan, 1 for the others). Same results, less per-step overhead.")
flags.DEFINE_bool("jit_compile", _DEFAULTS.jit_compile, "Compile the train step with XLA (slower on CPU; try it on GPUs).")
flags.DEFINE_enum("mixed_precision", _DEFAULTS.mixed_precision, list(MIXED_PRECISION), "Compute in float16 (with loss scaling) or bfloat16, keep float32 weights (for GPUs; slower on CPU).")
flags.DEFINE_bool("resume", True, "Continue from the newest checkpoint in --workdir if there is one, at the step it was written.")
flags.DEFINE_integer("checkpoint_every_steps", None, "Also checkpoint every N train steps (default: by time only, and after every epoch).")
flags.DEFINE_float("checkpoint_every_seconds", _DEFAULTS.checkpoint_every_seconds, "Also checkpoint when this many seconds of training passed since the last checkpoint (0: not by time).")
flags.DEFINE_bool("deterministic", _DEFAULTS.deterministic, "TensorFlow op determinism: a run killed and resumed ends bit-identical to one never interrupted (may be slower).")

FLAGS = flags.FLAGS


def config_from_flags():
    model_args = parse_model_args(FLAGS.model_arg)
    for shorthand in ("real_label", "d_steps", "ema_decay", "augment"):
        if FLAGS[shorthand].value is not None:
            model_args[shorthand] = FLAGS[shorthand].value
    return TrainConfig(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        image_size=FLAGS.image_size,
        channels=FLAGS.channels,
        crop=FLAGS.crop,
        cache_dir=FLAGS.cache_dir,
        max_image_pixels=FLAGS.max_image_pixels,
        model_args=model_args,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch,
        batch_size=FLAGS.batch_size,
        latent_dim=FLAGS.latent_dim,
        d_learning_rate=FLAGS.d_learning_rate,
        g_learning_rate=FLAGS.g_learning_rate,
        seed=FLAGS.seed,
        eval_every=FLAGS.eval_every,
        eval_samples=FLAGS.eval_samples,
        max_examples=FLAGS.max_examples,
        inception_weights=FLAGS.inception_weights,
        workdir=FLAGS.workdir,
        export_dir=FLAGS.export_dir,
        strategy=FLAGS.strategy,
        cpu_devices=FLAGS.cpu_devices,
        resume=FLAGS.resume,
        steps_per_execution=FLAGS.steps_per_execution,
        jit_compile=FLAGS.jit_compile,
        mixed_precision=FLAGS.mixed_precision,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        checkpoint_every_seconds=FLAGS.checkpoint_every_seconds or None,
        deterministic=FLAGS.deterministic,
    )


# Exit code of a run stopped by SIGTERM or SIGINT after saving a checkpoint (EX_TEMPFAIL: run
# the same command again to continue).
EXIT_PREEMPTED = 75


def _end_progress_line():
    """Ends the progress bar's line, so that a message after it starts on a line of its own."""
    sys.stdout.write("\n")
    sys.stdout.flush()


def _fail(message, exit_code):
    print(f"train.py: error: {message}", file=sys.stderr)
    return exit_code


def main(argv):
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}", exit_code=2)
    logging.set_verbosity(logging.WARNING)  # keep SavedModel-writing INFO lines off the console
    try:
        config = config_from_flags()
        config.validate()
    except ValueError as error:
        return _fail(error, exit_code=2)
    try:
        result = train(config)
    except TrainingPreempted as stopped:
        _end_progress_line()
        print(f"train.py: {stopped}", file=sys.stderr)
        return EXIT_PREEMPTED
    except (gan_data.DatasetError, NonFiniteLossError, CheckpointWriteError, ValueError) as error:
        _end_progress_line()
        return _fail(error, exit_code=1)
    except OSError as error:  # a full disk or a vanished directory while writing logs or the export
        _end_progress_line()
        return _fail(f"{error}. The checkpoints written before it are intact; rerun to resume.", exit_code=1)
    print(f"Trained in {result.seconds:.0f}s.")
    print(time_summary(result.time_split))
    if result.metrics:
        print(quality_summary(result.metrics))
    print(f"Samples:    {result.samples_dir}/")
    print(f"TensorBoard: tensorboard --logdir {config.resolved().workdir}")
    print(f"Checkpoint: {result.checkpoint_path}")
    if result.export_path:  # only the chief exports
        print(f"Exported:   {result.export_path}")
    return 0


if __name__ == "__main__":
    app.run(main)
