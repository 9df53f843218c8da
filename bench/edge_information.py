"""How much of an item's class its edge map carries: the ceiling of Pix2Pix's label preservation
on `edges2fashion`.

    python bench/edge_information.py --epochs=8

Trains the quality metrics' classifier (`gan_tf.data.classifiers.fit_classifier`: their architecture,
seed 0, Adam 1e-3, batch 128) twice on Fashion-MNIST's 60,000 training items padded to 32x32: once on the
items, once on their edge maps (`gan_tf.data.pairs.edge_map`, what `edges2fashion` feeds
Pix2Pix), and prints each one's accuracy on the 10,000 test items. A translation G(edges) is
judged by a classifier of items, so its label preservation can only pass the edge classifier's
accuracy by drawing the class more clearly than the edges show it. A benchmark, not a test.
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags

flags.DEFINE_integer("epochs", 8, "Epochs of each classifier (the fashion_mnist classifier's 8).")
FLAGS = flags.FLAGS


def main(argv):
    from gan_tf.data.classifiers import fit_classifier
    from gan_tf.data.pairs import _edges2fashion

    train_edges, train_labels, train_items, _ = _edges2fashion("train", None)
    test_edges, test_labels, test_items, _ = _edges2fashion("test", None)
    print(f"Fashion-MNIST at 32x32: {len(train_items):,} training and {len(test_items):,} test items; "
          f"{FLAGS.epochs} epochs each, {os.cpu_count()} cores")
    print("| classifier trained and tested on | test accuracy | wall s |")
    print("| --- | ---: | ---: |")
    for name, train_images, test_images in (("the items", train_items, test_items),
                                            ("their edge maps (edges2fashion's inputs)", train_edges, test_edges)):
        start = time.time()
        _, accuracy = fit_classifier(train_images, train_labels, test_images, test_labels, 10, FLAGS.epochs)
        print(f"| {name} | {accuracy:.3f} | {time.time() - start:.0f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
