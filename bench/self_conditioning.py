"""Would an unconditional GAN gain from conditioning on clusters of its own data?

    python bench/self_conditioning.py --epochs=20 --clusters=10
    python bench/self_conditioning.py --epochs=20 --clusters=0,10,20 --mismatch_weight=1

The idea of the self-conditioned GAN (Liu et al. 2020, "Diverse Image Generation via
Self-Conditioned GANs", arXiv 2006.10728): cluster the training images, train a conditional GAN
on the cluster ids as if they were labels, and sample unconditionally by drawing a cluster id
in proportion to its size. No label of the data is used. The paper clusters D's features and
re-clusters during training; this bench clusters once, before training, by k-means
(scikit-learn, installed with mlxtend) on the pixels' first 50 principal components.

Per `--clusters` entry k (0: the data's real labels, the upper bound), it prints the clusters'
purity (the share of images whose cluster's most common real label is their own), then trains
a CGAN (DCGAN's networks with the cluster as a one-hot input, D with the wrong-cluster term of
`--mismatch_weight`) with DCGAN's quickstart defaults (batch 32, no dropout, Adam(8e-4,
beta_1=0.5), averaged G) for `--epochs`, and judges `--num_samples` samples, their clusters drawn
by size, with bench/quality.py's metrics (FID, KID, precision, recall, classes >= 4% by the
data's classifier). Compare with `python bench/quality.py --epochs=20 --models=dcgan` on the same
machine. A benchmark, not a test: seeded, so the metrics do not depend on what else runs; the
wall times do. Results: docs/results/gans.md, "Conditioning on clusters of the data".
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from gan_tf import CGAN
from gan_tf.data import load_arrays
from gan_tf.data.classifiers import load_classifier
from gan_tf.metrics import evaluation
from gan_tf.serving.sampling import _to_uint8

flags.DEFINE_string("dataset", "mnist_5k", "Labelled dataset (the labels only judge purity, and k=0).")
flags.DEFINE_list("clusters", ["10"], "Numbers of k-means clusters to condition on (0: the real labels).")
flags.DEFINE_float("mismatch_weight", 1.0, "Weight of D's wrong-cluster term (CGAN's mismatch_weight).")
flags.DEFINE_integer("epochs", 20, "Training epochs per entry (the quickstart's 20).")
flags.DEFINE_integer("batch_size", 32, "Batch size (DCGAN's default).")
flags.DEFINE_integer("num_samples", 2000, "Samples judged per entry.")
flags.DEFINE_integer("seed", 0, "Seed of the clustering, the networks and the training.")
FLAGS = flags.FLAGS


def cluster_ids(images, num_clusters, seed):
    """k-means cluster of each image, on the pixels' first 50 principal components."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    pixels = images.reshape(len(images), -1).astype(np.float32) / 255.0
    components = PCA(min(50, pixels.shape[1]), random_state=seed).fit_transform(pixels)
    return KMeans(num_clusters, n_init=10, random_state=seed).fit_predict(components).astype(np.int32)


def purity(clusters, labels):
    """Share of images whose cluster's most common label is their own."""
    return sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters)) / len(labels)


def measure(num_clusters, images, labels, classifier):
    clusters = labels.astype(np.int32) if num_clusters == 0 else cluster_ids(images, num_clusters, FLAGS.seed)
    count = int(clusters.max()) + 1
    sizes = np.bincount(clusters, minlength=count)
    keras.utils.set_random_seed(FLAGS.seed)
    gan = CGAN(image_shape=images.shape[1:], num_classes=count, dropout=0.0, mismatch_weight=FLAGS.mismatch_weight,
               seed=FLAGS.seed)
    gan.compile_optimizers({"discriminator": keras.optimizers.Adam(8e-4, beta_1=0.5),
                            "generator": keras.optimizers.Adam(8e-4, beta_1=0.5)})
    data = (tf.data.Dataset.from_tensor_slices((gan.scaled(images), clusters))
            .shuffle(len(images), seed=FLAGS.seed).batch(FLAGS.batch_size, drop_remainder=True))
    start = time.time()
    gan.fit(data, epochs=FLAGS.epochs, verbose=0)
    seconds = time.time() - start
    drawn = np.random.default_rng(FLAGS.seed + 1).choice(count, size=FLAGS.num_samples, p=sizes / sizes.sum())
    samples = gan.generate(labels=drawn.astype(np.int32), seed=FLAGS.seed + 1)
    generated = evaluation.evaluate_samples(_to_uint8(samples, gan.value_range), FLAGS.dataset,
                                            classifier=classifier)
    return clusters, int(gan.g_optimizer.iterations), seconds, generated


def main(argv):
    del argv
    images, labels = load_arrays(FLAGS.dataset)
    classifier = load_classifier(FLAGS.dataset)
    print(f"{FLAGS.dataset}, {FLAGS.epochs} epochs at batch {FLAGS.batch_size}, mismatch_weight "
          f"{FLAGS.mismatch_weight:g}, {FLAGS.num_samples} samples, {os.cpu_count()} cores", flush=True)
    print("| conditioned on | purity | smallest / largest cluster | G updates | wall s | FID | KID | precision | "
          "recall | classes >= 4% | smallest class |\n" + "| --- " * 11 + "|", flush=True)
    floor = None
    for entry in FLAGS.clusters:
        num_clusters = int(entry)
        clusters, updates, seconds, report = measure(num_clusters, images, labels, classifier)
        generated, floor = report["generated"], report["floor"]
        sizes = np.bincount(clusters)
        histogram = np.array(generated["class_histogram"])
        name = "the real labels" if num_clusters == 0 else f"{num_clusters} k-means clusters"
        print(f"| {name} | {purity(clusters, labels):.3f} | {sizes.min()} / {sizes.max()} | {updates} | {seconds:.0f} | "
              f"{generated['fid']:.1f} | {generated['kid']:.2f} | {generated['precision']:.3f} | "
              f"{generated['recall']:.3f} | {int(np.sum(histogram >= 0.04))} | {histogram.min():.3f} |", flush=True)
    print(f"| real (floor) | | | | | {floor['fid']:.1f} | {floor['kid']:.2f} | {floor['precision']:.3f} | "
          f"{floor['recall']:.3f} | {int(np.sum(np.array(floor['class_histogram']) >= 0.04))} | "
          f"{min(floor['class_histogram']):.3f} |")


if __name__ == "__main__":
    app.run(main)
