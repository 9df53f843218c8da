"""Training throughput: `model.fit` against a hand-written `tf.function` loop and the machine's peak.

    python bench/throughput.py --output=throughput.json

For each model, in one run and on the same data, batch size and networks, it prints:

* `fit`: steady-state images/s of `model.fit` (what `train.py` runs, with the model's default
  `steps_per_execution`), median and spread over `--repeats` repeats, each timed inside one
  `fit` call after its warm-up steps;
* each speed lever alone, as a ratio to that: the other `steps_per_execution` (16 or 1),
  `jit_compile=True` (XLA), and the `mixed_bfloat16` policy; and for the GANs that take it, the
  cost of `augment="color,translation,cutout"` (DiffAugment);
* `hand-written`: the same networks and the same algorithm (D step on fresh fakes, then G step
  on fresh noise, one-sided smoothing, Adam) trained the way TensorFlow's DCGAN tutorial does
  it: one `@tf.function` step with gradient tapes, called from a Python loop over the dataset;
  and the ratio fit / hand-written. All variants are timed in rotation (reversed every other
  repeat), so that the machine's drift hits them alike;
* the float32 matmul FLOP/s measured in the same run, the analytic FLOPs per trained image
  (`trained_flops_per_image`) and so the model FLOP utilisation (MFU);
* the `tf.data` pipeline alone (images/s it delivers) and its ratio to the fastest training
  rate.

Whole calls: `--whole_calls` `fit` calls of the default variant and `predict` calls of the
mnist_5k classifier (the quality metrics' features), each timed from the call to its return
beside its steps' own time (first step's start to last step's end); what a call takes beyond
its steps is its set-up and any idle tail after the steps (`bench/idle_tail.py`).

`--batch_sweep` adds, for the MLP GAN, time per step against batch size with and without
`steps_per_execution`: the fixed per-step cost is the intercept of that line.

`--folder_pipeline` adds the rows for users' own images: Fashion-MNIST's test images written as
64x64 JPEG files in class folders (`bench/fashion_folder.py`), read by the streaming
`folder:` pipeline (`gan_tf.data.source`, no cache, decode and resize on every read) at batch 64:
its images/s, DCGAN-64's `fit` images/s on the same pipeline and their ratio; and the peak
resident memory of a process that streams one epoch of 2,000 and of 20,000 such files.

    python bench/throughput.py --models= --nobatch_sweep   # those rows alone (--nofolder_pipeline: without)

A figure for the README and issue notes, not a test. Run it on an otherwise idle machine.
"""

import functools
import inspect
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from gan_tf import data as gan_data
from gan_tf.models import MODELS, get_model_class
from gan_tf.nn.profiling import matmul_flops_per_second, trained_flops_per_image
from gan_tf.training.run import dtype_policy

flags.DEFINE_list("models", ["mlp_gan", "dcgan", "cgan"], f"Models to time, from {list(MODELS)}.")
flags.DEFINE_float("seconds", 2.0, "Length of each timing window, at the default fit's speed.")
flags.DEFINE_integer("repeats", 5, "Rotations over all variants (median and spread reported).")
flags.DEFINE_integer("batch_size", None, "Batch size (default: each model's).")
flags.DEFINE_integer("steps_per_execution", None, "For fit (default: each model's).")
flags.DEFINE_bool("batch_sweep", True, "Also time the MLP GAN's steps against batch size.")
flags.DEFINE_bool("folder_pipeline", True, "Also time the folder: pipeline on 64x64 JPEG files, and its memory.")
flags.DEFINE_integer("whole_calls", 5, "Whole fit and predict calls timed from call to return.")
flags.DEFINE_string("output", None, "Write the results as JSON here.")
FLAGS = flags.FLAGS


def handwritten_train_step(gan):
    """The tutorial-style training step for `gan`'s networks: tapes inside one `tf.function`.

    The same algorithm as `GAN.train_step` with `d_steps=1` (fresh noise for the D step and for
    the G step, real targets `real_label`), without Keras' trackers or distribution handling.
    """
    generator, discriminator = gan.generator, gan.discriminator
    d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    real_label = gan.real_label

    def noise(batch_size):
        if gan.noise == "uniform":
            return tf.random.uniform([batch_size, gan.latent_dim], -1.0, 1.0)
        return tf.random.normal([batch_size, gan.latent_dim])

    def with_labels(x, labels):
        return [x, labels] if gan.conditional else x

    @tf.function
    def train_step(images, labels):
        batch_size = tf.shape(images)[0]
        fake_images = generator(with_labels(noise(batch_size), labels), training=True)
        with tf.GradientTape() as d_tape:
            real_output = discriminator(with_labels(images, labels), training=True)
            fake_output = discriminator(with_labels(fake_images, labels), training=True)
            d_loss = cross_entropy(tf.fill(tf.shape(real_output), real_label), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        d_gradients = d_tape.gradient(d_loss, discriminator.trainable_variables)
        d_optimizer.apply_gradients(zip(d_gradients, discriminator.trainable_variables))
        with tf.GradientTape() as g_tape:
            fake_images = generator(with_labels(noise(batch_size), labels), training=True)
            fake_output = discriminator(with_labels(fake_images, labels), training=True)
            g_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
        g_gradients = g_tape.gradient(g_loss, generator.trainable_variables)
        g_optimizer.apply_gradients(zip(g_gradients, generator.trainable_variables))
        return d_loss, g_loss

    return train_step


class StepClock(keras.callbacks.Callback):
    """Records when each execution of `fit`'s train function returns (it waits for the step)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append((batch + 1, time.perf_counter()))


def time_fit(gan, dataset, steps, warmup_steps):
    """Seconds `fit` takes for `steps` steps, timed after `warmup_steps` within one call."""
    clock = StepClock()
    gan.fit(dataset, epochs=1, steps_per_epoch=warmup_steps + steps, verbose=0, shuffle=False, callbacks=[clock])
    (start_step, start), (end_step, end) = next(t for t in clock.times if t[0] >= warmup_steps), clock.times[-1]
    assert end_step - start_step == steps, (start_step, end_step)
    return end - start


class CallEnd(keras.callbacks.Callback):
    """Records when the steps of a `fit` or `predict` call end (before the call returns)."""

    def on_train_begin(self, logs=None):
        self.began = time.perf_counter()

    on_predict_begin = on_train_begin

    def on_train_end(self, logs=None):
        self.ended = time.perf_counter()

    on_predict_end = on_train_end


def time_whole_call(call):
    """`(call seconds, steps seconds)` of `call(callback)`: from the call to its return, and from
    its first step's start to its last step's end. The difference is set-up plus any idle tail."""
    clock = CallEnd()
    start = time.perf_counter()
    call(clock)
    return time.perf_counter() - start, clock.ended - clock.began


def whole_calls(call, calls):
    """Median call and steps seconds of `calls` calls, and the longest time after the last step."""
    timings = [time_whole_call(call) for _ in range(calls)]
    return {"call_seconds": statistics.median(t[0] for t in timings),
            "steps_seconds": statistics.median(t[1] for t in timings),
            "max_call_minus_steps_seconds": max(t[0] - t[1] for t in timings)}


def time_handwritten(step, dataset, steps, warmup_steps):
    """Seconds the hand-written loop takes for `steps` steps after `warmup_steps` steps."""
    batches = iter(dataset)
    for _ in range(warmup_steps):
        d_loss, _ = step(*next(batches))
    float(d_loss)
    start = time.perf_counter()
    for _ in range(steps):
        d_loss, _ = step(*next(batches))
    float(d_loss)  # wait for the last step
    return time.perf_counter() - start


@tf.function
def _drain(batches, num_batches):
    checksum = tf.constant(0.0)
    for _ in tf.range(num_batches):
        images, _ = next(batches)
        checksum += images[0, 0, 0, 0]
    return checksum


def time_pipeline(dataset, num_batches):
    """Seconds the pipeline takes to deliver `num_batches` batches into a `tf.function`.

    Consumed in-graph, as `fit` consumes it, so Python's per-batch cost is not counted.
    """
    batches = iter(dataset)
    _drain(batches, 2).numpy()
    start = time.perf_counter()
    _drain(batches, num_batches).numpy()
    return time.perf_counter() - start


def summarise(seconds, steps, batch_size):
    rates = [steps * batch_size / s for s in seconds]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def plain_model_kwargs(model_class):
    """Constructor arguments for the plain algorithm the hand-written loop implements: the
    conditional model's label count, and no wrong-label D term or weight average (CGAN's
    defaults add both; they are not part of the tutorial's step)."""
    kwargs = {"num_classes": 10} if model_class.conditional else {}
    parameters = inspect.signature(model_class.__init__).parameters
    if "mismatch_weight" in parameters:
        kwargs["mismatch_weight"] = 0.0
    if "ema_decay" in parameters:
        kwargs["ema_decay"] = None
    return kwargs


def fit_variants(model_class, steps_per_execution):
    """`{name: compiled GAN}`: what `train.py` runs by default, each speed lever alone, and
    the default with the differentiable augmentation on."""
    other_steps_per_execution = 16 if steps_per_execution == 1 else 1
    default = dict(steps_per_execution=steps_per_execution)
    variants = {
        "fit": ("off", default, {}),
        f"spe={other_steps_per_execution}": ("off", dict(steps_per_execution=other_steps_per_execution), {}),
        "xla": ("off", dict(steps_per_execution=steps_per_execution, jit_compile=True), {}),
        "bf16": ("mixed_bfloat16", default, {}),
    }
    if getattr(model_class, "applies_augment", False):
        variants["augment"] = ("off", default, {"augment": "color,translation,cutout"})  # DiffAugment's cost
    kwargs = plain_model_kwargs(model_class)
    gans = {}
    for name, (policy, compile_kwargs, model_kwargs) in variants.items():
        with dtype_policy(policy):
            gans[name] = model_class(seed=0, **kwargs, **model_kwargs)
        gans[name].compile(**compile_kwargs)
    return gans


def bench_model(name, images, labels, peak):
    """Times every fit variant, the hand-written loop and the pipeline, in rotation."""
    model_class = get_model_class(name)
    batch_size = FLAGS.batch_size or model_class.default_batch_size
    dataset = gan_data.make_dataset(images, labels, batch_size, value_range=model_class.value_range, seed=0, repeat=True)
    steps_per_execution = FLAGS.steps_per_execution or model_class.default_steps_per_execution
    gans = fit_variants(model_class, steps_per_execution)
    reference = model_class(seed=0, **plain_model_kwargs(model_class))
    handwritten = handwritten_train_step(reference)  # same networks, own weights

    # Every timing window holds about --seconds of training at the default's speed, in whole
    # executions of 16 steps (so every variant runs full executions).
    warmup_steps = 32
    time_fit(gans["fit"], dataset, 32, warmup_steps)  # tracing
    rate = 32 * batch_size / time_fit(gans["fit"], dataset, 32, warmup_steps)
    steps = max(16, int(FLAGS.seconds * rate / batch_size) // 16 * 16)
    timers = {variant: functools.partial(time_fit, gan, dataset, steps, warmup_steps) for variant, gan in gans.items()}
    timers["hand-written"] = functools.partial(time_handwritten, handwritten, dataset, steps, warmup_steps)
    for variant, gan in gans.items():
        if variant != "fit":
            time_fit(gan, dataset, 16, warmup_steps)  # tracing
    timers["hand-written"]()
    pipeline_batches = 3 * len(images) // batch_size  # three epochs: reshuffles included
    seconds = {variant: [] for variant in timers}
    pipeline_seconds = []
    for repeat in range(FLAGS.repeats):
        order = list(timers) if repeat % 2 == 0 else list(reversed(timers))  # cancels drift
        for variant in order:
            seconds[variant].append(timers[variant]())
        pipeline_seconds.append(time_pipeline(dataset, pipeline_batches))
    rates = {variant: summarise(times, steps, batch_size) for variant, times in seconds.items()}
    whole_fit = whole_calls(lambda clock: gans["fit"].fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                                                          callbacks=[clock]), FLAGS.whole_calls) if FLAGS.whole_calls else None
    pipeline = summarise(pipeline_seconds, pipeline_batches, batch_size)
    fit, hand = rates["fit"]["median"], rates["hand-written"]["median"]
    flops = trained_flops_per_image(gans["fit"])
    return {
        "model": name,
        "batch_size": batch_size,
        "steps_per_execution": steps_per_execution,
        "timed_steps": steps,
        "images_per_second": rates,
        "fit_over_handwritten": fit / hand,
        "flops_per_image": flops,
        "fit_flops_per_second": fit * flops,
        "mfu": fit * flops / peak,
        "pipeline_images_per_second": pipeline,
        "pipeline_over_training": pipeline["median"] / max(r["median"] for r in rates.values()),
        "whole_fit_calls": whole_fit,
    }


def format_whole(row):
    return (f"call {row['call_seconds']:.2f} s, steps {row['steps_seconds']:.2f} s, "
            f"at most {row['max_call_minus_steps_seconds']:.2f} s beyond the steps")


def whole_predict_calls(images):
    """Whole `predict` calls of the mnist_5k classifier over `images`, as the quality metrics make them."""
    from gan_tf.data.classifiers import load_classifier
    from gan_tf.data.pipeline import array_batches

    embedding = load_classifier("mnist_5k")._embedding
    batches = array_batches(images.astype(np.float32) / 255.0, 256)
    predict = lambda clock: embedding.predict(batches, verbose=0, callbacks=[clock])  # noqa: E731
    predict(CallEnd())  # tracing
    return whole_calls(predict, FLAGS.whole_calls)


def batch_sweep(images, labels):
    """MLP GAN seconds per step against batch size, with steps_per_execution 1 and 16."""
    rows = []
    for steps_per_execution in (1, 16):
        for batch_size in (32, 128, 512):
            dataset = gan_data.make_dataset(images, labels, batch_size, value_range=(0.0, 1.0), seed=0, repeat=True)
            gan = get_model_class("mlp_gan")(seed=0)
            gan.compile(steps_per_execution=steps_per_execution)
            time_fit(gan, dataset, 96, 32)
            seconds = [time_fit(gan, dataset, 96, 32) / 96 for _ in range(FLAGS.repeats)]
            rows.append({"steps_per_execution": steps_per_execution, "batch_size": batch_size,
                         "ms_per_step": 1000 * statistics.median(seconds)})
    for steps_per_execution in (1, 16):
        points = [(r["batch_size"], r["ms_per_step"]) for r in rows if r["steps_per_execution"] == steps_per_execution]
        slope, intercept = np.polyfit(*zip(*points), 1)
        print(f"  mlp_gan steps_per_execution={steps_per_execution:>2}: "
              + ", ".join(f"batch {b}: {ms:.2f} ms" for b, ms in points)
              + f"; fixed cost per step {intercept:.2f} ms, {1000 * slope:.2f} us per image")
    return rows


_STREAM_MEMORY_SCRIPT = """
import os, resource, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, {root!r})
from gan_tf.data import open_source
source = open_source("folder:" + {folder!r}, image_size=64, in_memory={in_memory!r})
count = sum(int(images.shape[0]) for images, _ in source.dataset(64, seed=0))
print(count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def streaming_peak_memory_mb(folder, in_memory=False):
    """`(images delivered, peak resident MiB)` of a fresh process reading one epoch of `folder`
    through the streaming path (or, for comparison, the in-memory path)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = _STREAM_MEMORY_SCRIPT.format(root=root, folder=folder, in_memory=in_memory)
    completed = subprocess.run([sys.executable, "-c", script],
                               capture_output=True, text=True, check=True)
    count, megabytes = completed.stdout.split()[-2:]
    return int(count), int(megabytes)


def folder_pipeline(seconds=10.0):
    """The `folder:` rows: streaming JPEG pipeline rate against DCGAN-64's training rate, and
    the streaming path's peak memory at 2,000 and 20,000 files."""
    import tempfile

    from bench.fashion_folder import write_folder
    from gan_tf.data import open_source

    with tempfile.TemporaryDirectory() as root:
        small, large = os.path.join(root, "small"), os.path.join(root, "large")
        write_folder(small, size=64, image_format="jpeg", rgb=True, limit=2000)
        write_folder(large, size=64, image_format="jpeg", rgb=True, copies=2)  # 20,000 files
        source = open_source(f"folder:{small}", image_size=64, in_memory=False)
        dataset = source.dataset(64, seed=0, repeat=True)
        pipeline_rate = 30 * 64 / time_pipeline(dataset, 30)  # warm-up included: a cold start
        pipeline_rate = max(pipeline_rate, 60 * 64 / time_pipeline(dataset, 60))
        gan = get_model_class("dcgan").from_data(source.info, seed=0)
        gan.compile()
        time_fit(gan, dataset, 4, 4)  # tracing
        steps = max(4, int(seconds * (4 * 64 / time_fit(gan, dataset, 4, 4)) / 64))
        training_rate = statistics.median(steps * 64 / time_fit(gan, dataset, steps, 2) for _ in range(3))
        memory = {count: streaming_peak_memory_mb(folder) for count, folder in ((2000, small), (20000, large))}
        in_memory = {count: streaming_peak_memory_mb(folder, in_memory=True)
                     for count, folder in ((2000, small), (20000, large))}
    row = {"pipeline_images_per_second": pipeline_rate, "dcgan64_images_per_second": training_rate,
           "pipeline_over_training": pipeline_rate / training_rate,
           "streaming_peak_memory_mb": {str(count): mb for count, (_, mb) in memory.items()},
           "in_memory_peak_memory_mb": {str(count): mb for count, (_, mb) in in_memory.items()},
           "images_streamed": {str(count): streamed for count, (streamed, _) in memory.items()}}
    print(f"folder: pipeline, 64x64 RGB JPEG files, batch 64, streaming (no cache): {pipeline_rate:.0f} img/s; "
          f"DCGAN-64 fit on it: {training_rate:.1f} img/s; pipeline / training {row['pipeline_over_training']:.0f}x")
    print("streaming one epoch, peak resident memory: "
          + ", ".join(f"{count:,} files: {mb} MiB ({streamed:,} images)" for count, (streamed, mb) in memory.items()))
    print("the in-memory path on the same files, for comparison: "
          + ", ".join(f"{count:,} files: {mb} MiB" for count, (_, mb) in in_memory.items()))
    return row


def main(argv):
    images, labels = gan_data.load_arrays("mnist_5k")
    peak = matmul_flops_per_second()
    print(f"{os.cpu_count()} CPU cores; float32 matmul peak {peak / 1e9:.0f} GFLOP/s; "
          f"{FLAGS.repeats} repeats of ~{FLAGS.seconds:g} s windows per variant, all variants in rotation")
    print(f"{'model':<8} {'batch':>5} {'spe':>3} {'fit img/s':>17} {'hand-written img/s':>18} {'ratio':>5} "
          f"{'MFLOP/img':>9} {'GFLOP/s':>7} {'MFU':>4} {'pipeline img/s':>14} {'x train':>7}")
    results = []
    for name in FLAGS.models:
        row = bench_model(name, images, labels, peak)
        results.append(row)
        rates, pipe = row["images_per_second"], row["pipeline_images_per_second"]
        fit, hand = rates["fit"], rates["hand-written"]
        print(f"{name:<8} {row['batch_size']:>5} {row['steps_per_execution']:>3} "
              f"{fit['median']:>7.0f} ({fit['min']:.0f}-{fit['max']:.0f}) "
              f"{hand['median']:>7.0f} ({hand['min']:.0f}-{hand['max']:.0f}) "
              f"{row['fit_over_handwritten']:>5.2f} {row['flops_per_image'] / 1e6:>9.1f} "
              f"{row['fit_flops_per_second'] / 1e9:>7.1f} {row['mfu']:>4.0%} "
              f"{pipe['median']:>14.0f} {row['pipeline_over_training']:>7.0f}", flush=True)
    if results:
        print("Levers, each alone, relative to the default fit (median images/s ratio):")
    for row in results:
        rates = row["images_per_second"]
        print(f"  {row['model']:<8} " + "  ".join(
            f"{variant} {rates[variant]['median'] / rates['fit']['median']:.2f}x"
            for variant in rates if variant not in ("fit", "hand-written")))
    predict = None
    if FLAGS.whole_calls:
        print(f"Whole calls ({FLAGS.whole_calls} each), median seconds from call to return beside the steps' own, "
              "and the most a call took beyond its steps (set-up, and any idle tail):")
        for row in results:
            print(f"  {row['model']:<8} fit of {row['timed_steps']} steps: " + format_whole(row["whole_fit_calls"]))
        predict = whole_predict_calls(images)
        print(f"  the mnist_5k classifier's predict of {len(images):,} images: " + format_whole(predict))
    sweep = batch_sweep(images, labels) if FLAGS.batch_sweep else []
    folder = folder_pipeline() if FLAGS.folder_pipeline else None
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump({"cpu_count": os.cpu_count(), "matmul_flops_per_second": peak,
                       "models": results, "classifier_predict_calls": predict, "mlp_gan_batch_sweep": sweep, "folder_pipeline": folder}, f, indent=2)
        print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
