"""What the end of a short run gains from: a longer average of G's weights, more epochs, or a
learning rate decayed to zero. One seeded training run per command; evaluation is not counted.

    python bench/late_training.py --model=dcgan --epochs=20                     # averaging horizons
    python bench/late_training.py --model=dcgan --epochs=30 --evaluate_at=16,20,24,27,30
    python bench/late_training.py --model=dcgan --epochs=20 --decay_from=0.5   # linear decay, 2nd half

Averaging: besides the model's own average (`ema_decay`, warmed up as `min(decay, (1 + t) / (10 + t))`:
about the last tenth of training), the run keeps averages of G's weights with decay
`1 - c / (10 + t)` for each `--horizons` value c (c = 9 is the model's warm-up without its cap;
a smaller c remembers more: about the last 1/(c + 1) of training, c = 1 the plain mean of every
step's weights), and evaluates each, and G's own weights, on the same samples at the end.
`--decay_from=F` scales both learning rates linearly from their value at fraction F of training
to zero at the end. Columns: FID, KID, precision, recall (`gan_tf.metrics.evaluation`, the
data's classifier, `--num_samples` samples drawn with seed 1, as bench/quality.py draws them).
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

flags.DEFINE_string("model", "dcgan", "An image GAN with a weight average (ema_decay).")
flags.DEFINE_string("dataset", "mnist_5k", "Dataset to train and evaluate on.")
flags.DEFINE_integer("epochs", 20, "Epochs to train.")
flags.DEFINE_integer("seed", 0, "Training seed.")
flags.DEFINE_integer("num_samples", 2000, "Samples per evaluation.")
flags.DEFINE_list("horizons", ["9", "6", "4", "3", "2", "1"], "Averages kept beside the model's: decay 1 - c / (10 + t).")
flags.DEFINE_list("evaluate_at", [], "Also evaluate the model as it samples after these epochs.")
flags.DEFINE_float("decay_from", None, "Decay both learning rates linearly to 0 from this fraction of training.")
FLAGS = flags.FLAGS


def main(argv):
    import keras

    from gan_tf.data import classifiers
    from gan_tf.metrics import evaluation
    from gan_tf.serving.sampling import _to_uint8
    from gan_tf.training import TrainConfig, train

    classifier = classifiers.load_classifier(FLAGS.dataset)
    horizons = [float(c) for c in FLAGS.horizons]
    evaluate_at = {int(epoch) for epoch in FLAGS.evaluate_at}
    rows = []

    def evaluate(name, gan):
        samples = gan.sample(FLAGS.num_samples, seed=1)
        labels = (samples.conditions or {}).get("labels")
        report = evaluation.evaluate_samples(_to_uint8(samples.images, gan.value_range), FLAGS.dataset, labels=labels,
                                             classifier=classifier)["generated"]
        rows.append((name, report["fid"], report["kid"], report["precision"], report["recall"]))
        print(f"{name}: FID {report['fid']:.1f}", flush=True)

    class LateTraining(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.averages = {c: [w.copy() for w in self.model.generator.get_weights()] for c in horizons}
            self.rates = {o: float(o.learning_rate.numpy()) for o in self.model.optimizer_roles().values()}
            self.total_steps = None

        def on_train_batch_begin(self, batch, logs=None):
            if FLAGS.decay_from is None:
                return
            step = int(self.model.g_optimizer.iterations)
            self.total_steps = self.total_steps or FLAGS.epochs * self.params["steps"]
            remaining = 1.0 - max(0.0, step / self.total_steps - FLAGS.decay_from) / (1.0 - FLAGS.decay_from)
            for optimizer, rate in self.rates.items():
                optimizer.learning_rate.assign(rate * min(1.0, remaining))

        def on_train_batch_end(self, batch, logs=None):
            step = float(int(self.model.g_optimizer.iterations))
            weights = self.model.generator.get_weights()
            for c, average in self.averages.items():
                decay = 1.0 - c / (10.0 + step)
                for kept, value in zip(average, weights):
                    kept *= decay
                    kept += (1.0 - decay) * value

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in evaluate_at and epoch + 1 < FLAGS.epochs:
                evaluate(f"the model's samples after epoch {epoch + 1}", self.model)

    late = LateTraining()
    with tempfile.TemporaryDirectory() as workdir:
        config = TrainConfig(model=FLAGS.model, dataset=FLAGS.dataset, epochs=FLAGS.epochs, seed=FLAGS.seed,
                             workdir=os.path.join(workdir, "run"), export_dir=os.path.join(workdir, "export"),
                             eval_every=0, verbose=0)
        start = time.time()
        gan = train(config, callbacks=[late]).model
        print(f"trained in {time.time() - start:.0f} s", flush=True)
    if gan.ema_generator is None:
        raise app.UsageError(f"{FLAGS.model} keeps no average of G's weights here (ema_decay is None)")
    evaluate(f"the model's samples after epoch {FLAGS.epochs} (its own average)", gan)
    own_average = gan.ema_generator.get_weights()
    gan.ema_generator.set_weights(gan.generator.get_weights())
    evaluate("G's own weights", gan)
    for c, average in late.averages.items():
        gan.ema_generator.set_weights(average)
        evaluate(f"average with decay 1 - {c:g} / (10 + t)", gan)
    gan.ema_generator.set_weights(own_average)

    print(f"\n{FLAGS.model} on {FLAGS.dataset}, seed {FLAGS.seed}, {FLAGS.epochs} epochs"
          + (f", learning rates decayed to 0 from {FLAGS.decay_from:.0%} of training" if FLAGS.decay_from else "")
          + f", {FLAGS.num_samples} samples")
    print("| sampled from | FID | KID | precision | recall |\n| --- | ---: | ---: | ---: | ---: |")
    for name, fid, kid, precision, recall in rows:
        print(f"| {name} | {fid:.1f} | {kid:.2f} | {precision:.3f} | {recall:.3f} |")


if __name__ == "__main__":
    app.run(main)
