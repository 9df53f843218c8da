"""Prints DCGAN training throughput on one device vs MirroredStrategy over N logical CPUs,
and the largest weight difference between one step on 1 and on N replicas.

    python bench/distribution.py --cpu_devices=2 --steps=40 --repeats=3

A figure for the README and issue notes, not a test. Run on an idle machine.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

from gan_tf import data as gan_data
from gan_tf.training.distribute import make_strategy

flags.DEFINE_integer("cpu_devices", 2, "Logical CPU devices for the mirrored run.")
flags.DEFINE_integer("steps", 40, "Timed steps per repeat.")
flags.DEFINE_integer("repeats", 3, "Timed repeats per strategy (median reported).")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
FLAGS = flags.FLAGS


def main(argv):
    mirrored = make_strategy("mirrored", cpu_devices=FLAGS.cpu_devices)  # before any TF op
    import keras
    import tensorflow as tf

    from gan_tf import CGAN, DCGAN

    images, labels = gan_data.load_arrays("mnist_5k")
    dataset = gan_data.make_dataset(images, labels, FLAGS.batch_size, seed=0, repeat=True)

    print(f"{os.cpu_count()} cores; DCGAN, batch {FLAGS.batch_size}, {FLAGS.steps} steps x {FLAGS.repeats}")
    for name, strategy in (("one device", tf.distribute.get_strategy()), (f"mirrored x{FLAGS.cpu_devices} CPU", mirrored)):
        with strategy.scope():
            gan = DCGAN(seed=0)
            gan.compile()
        gan.fit(dataset, epochs=1, steps_per_epoch=5, verbose=0, shuffle=False)  # warm-up: tracing
        rates = []
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            gan.fit(dataset, epochs=1, steps_per_epoch=FLAGS.steps, verbose=0, shuffle=False)
            rates.append(FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start))
        print(f"  {name:<20} {np.median(rates):7.1f} images/s (min {min(rates):.1f}, max {max(rates):.1f})")

    batch = next(iter(gan_data.make_dataset(images, labels, 16, seed=1)))
    for model_class in (DCGAN, CGAN):
        initial = model_class(dropout=0.0, seed=0).get_weights()
        trained = []
        for strategy in (tf.distribute.get_strategy(), mirrored):
            with strategy.scope():
                gan = model_class(dropout=0.0, seed=0)
                gan.compile()
            gan.set_weights(initial)
            gan.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0, shuffle=False)
            trained.append(gan.get_weights())
        difference = max(float(np.abs(a - b).max()) for a, b in zip(*trained))
        print(f"  {model_class.__name__}: max |w(1 device) - w({FLAGS.cpu_devices} replicas)| after one step = {difference:.2e}")


if __name__ == "__main__":
    app.run(main)
