"""Prints the sampling time per image of the pixel-by-pixel models, naive against cached, and
checks that both samplers draw the same images for the same seed.

    python bench/autoregressive_sampling.py --num_samples=16 --repeats=3 \
        --models=pixelcnn,pixelrnn+recurrence=row_lstm,pixelrnn

The naive sampler runs the whole network on the whole canvas for every pixel (H x W passes);
the cached one reuses what the pixels done computed: the PixelCNN keeps each vertical layer's
finished rows and runs only the horizontal stack on the current row per pixel; the Row LSTM keeps
each layer's states of the row above and reruns one row per pixel; the Diagonal BiLSTM has no
cached sampler (its "cached" is the naive one). Untrained weights with each model's defaults
(sampling costs the same after training). A figure for the results page, not a test.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from bench.common import parse_entry  # noqa: E402

flags.DEFINE_list("models", ["pixelcnn"], "Models, each `name[+argument=value...]` (model arguments as --model_arg).")
flags.DEFINE_integer("num_samples", 16, "Images per sampling call (one batch).")
flags.DEFINE_integer("repeats", 3, "Timed calls per sampler (median reported).")
flags.DEFINE_integer("image_size", 28, "Square images of this side, one channel.")
flags.DEFINE_boolean("naive", True, "Also time the naive sampler (slow: H x W passes of the whole network).")
FLAGS = flags.FLAGS


def main(argv):
    from gan_tf.models import MODELS

    for entry in FLAGS.models:
        name, overrides = parse_entry(entry)
        model = MODELS[name](image_shape=(FLAGS.image_size, FLAGS.image_size, 1), seed=0,
                             **overrides.get("model_args", {}))
        print(f"{entry} {FLAGS.image_size}x{FLAGS.image_size}x1, {model.count_params():,} parameters, "
              f"batches of {FLAGS.num_samples}, {os.cpu_count()} cores")
        images, timings = {}, {}
        for sampler in ("cached", "naive") if FLAGS.naive else ("cached",):
            model.sample(2, seed=0, sampler=sampler)  # trace the graph
            seconds = []
            for repeat in range(FLAGS.repeats):
                start = time.perf_counter()
                images[sampler] = model.sample(FLAGS.num_samples, seed=repeat, sampler=sampler).images
                seconds.append(time.perf_counter() - start)
            timings[sampler] = 1000 * np.median(seconds) / FLAGS.num_samples
            print(f"  {sampler:<7} {timings[sampler]:8.1f} ms per image (median of {FLAGS.repeats}; "
                  f"{1000 * min(seconds) / FLAGS.num_samples:.1f} to {1000 * max(seconds) / FLAGS.num_samples:.1f})")
        if FLAGS.naive:
            same = np.array_equal(images["cached"], images["naive"])
            print(f"  cached is {timings['naive'] / timings['cached']:.1f}x faster; same images for the same seed: {same}")


if __name__ == "__main__":
    app.run(main)
