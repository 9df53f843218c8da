"""Where Pix2Pix's FID drift on `edges2fashion` comes from: D's balance with G, and batch norm's
moving averages, epoch by epoch.

    python bench/pix2pix_balance.py --epochs=10
    python bench/pix2pix_balance.py --epochs=10 --d_learning_rate=5e-5
    python bench/pix2pix_balance.py --epochs=10 --model_arg=batch_norm_momentum=0.99

Trains Pix2Pix (width 32, seed 0) through `gan_tf.training.train` for `--epochs` epochs of
`--steps_per_epoch` steps and after each prints D's mean P(real) on real pairs (`d_real`) and on
G's (`d_fake`), G's adversarial loss and L1 (the epoch's running means), and the held-out quality
of `--num_samples` translations (seed 1; FID, label preservation, sharpness, L1 to the targets),
computed twice with the same inputs and dropout seeds: with batch norm's moving averages (how
Pix2Pix translates and exports) and with each batch's own statistics (the paper's test-time
choice; batches of 64). Where the two part, G has come to depend on batch statistics its moving
averages do not hold. A benchmark, not a test: run nothing else meanwhile.
"""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from absl import app, flags

flags.DEFINE_integer("epochs", 10, "Epochs to train.")
flags.DEFINE_integer("steps_per_epoch", 4000, "Train steps per epoch.")
flags.DEFINE_float("d_learning_rate", None, "D's learning rate (default: Pix2Pix's 2e-4).")
flags.DEFINE_multi_string("model_arg", [], "NAME=VALUE: a Pix2Pix constructor argument besides width=32 (repeatable).")
flags.DEFINE_integer("num_samples", 1000, "Held-out inputs translated and judged after each epoch.")
FLAGS = flags.FLAGS


def main(argv):
    import keras

    from gan_tf.metrics.evaluation import evaluate_translation, features_for
    from gan_tf.models.generative import parse_model_args
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.data import open_source
    from gan_tf.training import TrainConfig, train
    from gan_tf.models.translation import example_seeds

    source = open_source("edges2fashion")
    classifier = features_for(source)

    def judged(model, outputs, samples):
        report = evaluate_translation(_to_uint8(outputs, model.value_range), source, labels=samples.conditions["labels"],
                                      targets=samples.conditions["targets"], classifier=classifier, seed=0)["generated"]
        return f"{report['fid']:.1f} | {report['label_accuracy']:.3f} | {report['sharpness']:.2f} | {report['l1']:.3f}"

    class JudgeEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            model = self.model
            samples = model.sample(FLAGS.num_samples, seed=1)  # batch norm's moving averages
            inputs = model.scaled(samples.conditions["inputs"])
            seeds = example_seeds(len(inputs), 1)  # the seeds `sample` used
            weights = model.generator.get_weights()  # training=True moves the moving averages
            batch_statistics = np.concatenate([
                keras.ops.convert_to_numpy(model.generator([inputs[i : i + 64], seeds[i : i + 64]], training=True))
                for i in range(0, len(inputs), 64)])
            model.generator.set_weights(weights)
            print(f"| {epoch + 1} | {(epoch + 1) * FLAGS.steps_per_epoch} | {logs['d_real']:.3f} | {logs['d_fake']:.3f} | "
                  f"{logs['g_gan']:.2f} | {logs['l1']:.4f} | {judged(model, samples.images, samples)} | "
                  f"{judged(model, batch_statistics, samples)} |", flush=True)

    model_args = {"width": 32, **parse_model_args(FLAGS.model_arg)}
    print(f"Pix2Pix {model_args} on edges2fashion, D learning rate {FLAGS.d_learning_rate or 2e-4:g}, "
          f"{FLAGS.num_samples} held-out inputs, {os.cpu_count()} cores")
    print("| epoch | steps | d_real | d_fake | g_gan | train L1 | FID | label | sharpness | L1 "
          "| FID (batch stats) | label | sharpness | L1 |")
    print("| --- " * 14 + "|")
    learning_rate = {} if FLAGS.d_learning_rate is None else {"d_learning_rate": FLAGS.d_learning_rate}
    with tempfile.TemporaryDirectory() as workdir:
        config = TrainConfig(model="pix2pix", dataset="edges2fashion", epochs=FLAGS.epochs,
                             steps_per_epoch=FLAGS.steps_per_epoch, workdir=os.path.join(workdir, "run"),
                             export_dir=os.path.join(workdir, "export"), eval_every=0, verbose=0,
                             model_args=model_args, **learning_rate)
        train(config, callbacks=[JudgeEachEpoch()])


if __name__ == "__main__":
    app.run(main)
