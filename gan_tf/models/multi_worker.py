"""`MultiWorkerWorkarounds`: the Keras 3.15 `MultiWorkerMirroredStrategy` workarounds, in one place
(a mixin of every family base: `GAN`, `TranslationModel`, `LikelihoodModel`, MidiNet, StackGAN)."""

import tensorflow as tf


def _is_multi_worker():
    return isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy)


class MultiWorkerWorkarounds:
    """Mixin with the Keras 3.15.1 `MultiWorkerMirroredStrategy` workarounds, in one place.

    Both bugs are in `fit` under `MultiWorkerMirroredStrategy` (upstream:
    https://github.com/tensorflow/tensorflow/issues/72388); remove this class once Keras
    fixes them.

    1. `fit` reduces each step's logs with `strategy.reduce("MEAN", value, axis=0)`, which fails
       on scalars ("Invalid reduction dimension 0 for input with 0 dimensions"). Rank-1 logs
       reduce correctly, and epoch-end logs come from the trackers themselves: see
       `train_step_logs`.
    2. Before training, `fit` (`_maybe_symbolic_build`) reduces the first batch with
       `strategy.reduce("MEAN", batch, axis=None)`, which fails for an `(images, labels)` tuple
       ("Attempt to convert a value (PerReplica: ...) to a Tensor"). That build is only needed
       for models, losses, metrics or optimizers that are not built yet; a GAN builds its
       networks in `__init__` and its optimizers in `compile`, so it is skipped there.
    """

    def train_step_logs(self):
        """The dict a `train_step` returns: each tracker's result (rank 1 under multi-worker)."""
        logs = {metric.name: metric.result() for metric in self.metrics}
        if _is_multi_worker():
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        multi_worker = isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy)
        if multi_worker and self.built and getattr(self, "optimizers_built", False):
            return
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
