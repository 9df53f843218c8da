"""Shows the idle tail after `fit` and `predict` calls, its cause, and that it is gone without
tf.data's autotuning (`gan_tf.data.pipeline.without_autotune`).

    python bench/idle_tail.py --calls=20

Then the same count for gan_tf's own calls, as `train.py` and `evaluate.py` make them: DCGAN
`fit` on `gan_tf.data.make_dataset`, the mnist_5k classifier's `predict` (the features of the
quality metrics), and a whole `Evaluator.evaluate` of 1,000 images (which runs two of those
predicts); for the evaluation, whose calls have no last-step callback, a tail shows as a call
longer than the median call by more than the threshold.

The cause, in TensorFlow's source (2.21): every iterator of a pipeline with autotuning on starts a
model thread (`RootDataset::Iterator::EnsureModelThreadStarted`) that runs
`Model::OptimizeLoop`: it optimizes, then waits on a condition variable for a period that
doubles after each optimization (10, 20, 40, ... ms, up to a minute), until its cancellation
manager is cancelled. The iterator's destructor calls `StartCancel()` and then joins the thread.
`StartCancel` runs the cancellation callbacks (which wake the thread) *before* it marks the
manager cancelled, so the woken thread can find `IsCancelled()` still false and go back to
sleep for the rest of its period: the destructor, and the `fit` or `predict` call that drops
the iterator, then wait until the thread's next scheduled wake-up, 10 ms x (2^k - 1) after the
iterator began (1.27 s, 10.23 s, 40.95 s, 81.91 s, ...), with both cores idle. Without
autotuning there is no model thread. A plain Keras model on a plain pipeline shows it.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_integer("calls", 20, "Calls of each kind (fit, predict) per setting.")
flags.DEFINE_integer("steps", 60, "Train steps per fit call (batch 64).")
flags.DEFINE_float("threshold", 0.1, "A tail longer than this many seconds counts as idle.")
flags.DEFINE_integer("gan_steps", 20, "Train steps per DCGAN fit call (batch 64).")
flags.DEFINE_integer("rate_repeats", 3, "Interleaved pairs timing the in-memory pipeline with and without autotuning.")
flags.DEFINE_integer("folder_repeats", 3, "Interleaved pairs timing the streaming folder: pipeline (2,000 64x64 RGB "
                     "JPEG files) with and without autotuning (0: skip).")
FLAGS = flags.FLAGS


class LastStep(keras.callbacks.Callback):
    """Records when a call's last step ended (`at`), before the call returns."""

    def on_train_end(self, logs=None):
        self.at = time.perf_counter()

    on_predict_end = on_train_end


def time_calls(call):
    """`(durations, tails)` of `--calls` calls of `call(LastStep callback)`, after one untimed
    call (tracing); a tail is the time from the last step's end to the return (the whole call
    when the call has no steps to report, as the evaluation)."""
    call(LastStep())
    durations, tails = [], []
    for _ in range(FLAGS.calls):
        callback = LastStep()
        start = time.perf_counter()
        call(callback)
        end = time.perf_counter()
        durations.append(end - start)
        tails.append(end - getattr(callback, "at", start))
    return durations, tails


def summary(durations, tails):
    return (f"{np.median(durations):>13.2f} {np.median(tails):>13.3f} {max(tails):>10.2f} "
            f"{sum(t > FLAGS.threshold for t in tails):>7} / {FLAGS.calls}")


def main(argv):
    import tensorflow as tf

    from gan_tf.data.pipeline import without_autotune

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(6000, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, len(images))
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.Conv2D(32, 3, activation="relu"), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def pipelines(autotune):
        train = (tf.data.Dataset.from_tensor_slices((images, labels)).repeat().batch(64)
                 .map(lambda x, y: (x, y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
        predict = tf.data.Dataset.from_tensor_slices(images).batch(256).prefetch(tf.data.AUTOTUNE)
        return (train, predict) if autotune else (without_autotune(train), without_autotune(predict))

    print(f"{FLAGS.calls} calls each; tail = return time - the last step's end; idle if over {FLAGS.threshold} s")
    print(f"{'pipeline':<22} {'call':<8} {'median call s':>13} {'median tail s':>13} {'max tail s':>10} {'idle tails':>10}")
    for autotune in (True, False):
        train, predict = pipelines(autotune)
        calls = {"fit": lambda callback: model.fit(train, epochs=1, steps_per_epoch=FLAGS.steps, verbose=0,
                                                   callbacks=[callback]),
                 "predict": lambda callback: model.predict(predict, verbose=0, callbacks=[callback])}
        for name, call in calls.items():
            label = "autotune on (default)" if autotune else "without_autotune"
            print(f"{label:<22} {name:<8} " + summary(*time_calls(call)), flush=True)
    gan_tf_calls()
    pipeline_rates(FLAGS.rate_repeats)
    if FLAGS.folder_repeats:
        folder_rates(FLAGS.folder_repeats)


def gan_tf_calls():
    """Tails after gan_tf's own fit, predict and evaluation calls (its pipelines, no autotuning)."""
    from gan_tf import DCGAN, Evaluator, data
    from gan_tf.data.classifiers import load_classifier
    from gan_tf.data.pipeline import array_batches

    images, labels = data.load_arrays("mnist_5k")
    gan = DCGAN(seed=0)
    gan.compile()
    batches = data.make_dataset(images, labels, 64, seed=0, repeat=True)
    classifier = load_classifier("mnist_5k")
    evaluator = Evaluator("mnist_5k", 1000, classifier)
    generated = images[:1000]
    scaled = images.astype(np.float32) / 255.0
    calls = {
        "DCGAN fit": lambda callback: gan.fit(batches, epochs=1, steps_per_epoch=FLAGS.gan_steps, verbose=0,
                                              callbacks=[callback]),
        "classifier predict": lambda callback: classifier._embedding.predict(array_batches(scaled, 256), verbose=0,
                                                                             callbacks=[callback]),
        "evaluation": lambda callback: evaluator.evaluate(generated),
    }
    print(f"\ngan_tf's calls, {FLAGS.calls} each (evaluation: tail = call - median call)")
    print(f"{'call':<20} {'median call s':>13} {'median tail s':>13} {'max tail s':>10} {'idle tails':>10}")
    for name, call in calls.items():
        durations, tails = time_calls(call)
        if name == "evaluation":
            tails = [duration - np.median(durations) for duration in durations]
        print(f"{name:<20} " + summary(durations, tails), flush=True)


def images_per_second(dataset, num_batches, warm_up):
    """Batch-64 images per second of `dataset`'s next `num_batches` batches after `warm_up` ones."""
    batches = iter(dataset)
    for _ in range(warm_up):
        next(batches)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(batches)
    return num_batches * 64 / (time.perf_counter() - start)


def pipeline_rates(repeats, num_batches=3000):
    """Images per second of `gan_tf.data.make_dataset` (mnist_5k, batch 64) without autotuning (as
    gan_tf builds it) and with it turned back on, in interleaved pairs."""
    import tensorflow as tf

    from gan_tf import data

    images, labels = data.load_arrays("mnist_5k")
    autotuned = tf.data.Options()
    autotuned.autotune.enabled = True

    def rate(dataset):
        return images_per_second(dataset, num_batches, warm_up=50)

    print("\nin-memory pipeline (make_dataset, mnist_5k, batch 64), images/s")
    for repeat in range(repeats):
        without = rate(data.make_dataset(images, labels, 64, seed=0, repeat=True))
        with_autotune = rate(data.make_dataset(images, labels, 64, seed=0, repeat=True).with_options(autotuned))
        print(f"pair {repeat + 1}: without autotuning {without:,.0f}, with {with_autotune:,.0f}", flush=True)


def folder_rates(repeats, num_batches=300):
    """Images per second of the streaming `folder:` pipeline (2,000 64x64 RGB JPEG files, decoded
    from disk every epoch, batch 64) as gan_tf builds it (without autotuning) and with autotuning
    turned back on, in interleaved pairs."""
    import tempfile

    import tensorflow as tf

    from bench.fashion_folder import write_folder
    from gan_tf.data import open_source

    autotuned = tf.data.Options()
    autotuned.autotune.enabled = True

    def rate(dataset):
        return images_per_second(dataset, num_batches, warm_up=20)

    with tempfile.TemporaryDirectory() as root:
        write_folder(root, size=64, image_format="jpeg", rgb=True, limit=2000)
        source = open_source(f"folder:{root}", image_size=64, in_memory=False)
        print(f"\nstreaming folder: pipeline (2,000 64x64 RGB JPEG files, batch 64, {num_batches} batches), images/s")
        for repeat in range(repeats):
            without = rate(source.dataset(64, seed=0, repeat=True))
            with_autotune = rate(source.dataset(64, seed=0, repeat=True).with_options(autotuned))
            print(f"pair {repeat + 1}: without autotuning {without:,.0f}, with {with_autotune:,.0f}", flush=True)


if __name__ == "__main__":
    app.run(main)
