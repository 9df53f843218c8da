"""Training: `TrainConfig` (what `train.py`'s flags fill in) and `train(config)`, the run itself.

A run opens the data, builds the model named in the config, restores the workdir's newest
checkpoint, fits with the standard callbacks (`callbacks`: sample grids, atomic step-level
checkpoints, preemption, a NaN guard; `monitoring`: TensorBoard samples, quality metrics, loss
curves, hparams), and exports the model. `distribute` makes the tf.distribute strategies;
`workdir_lock` keeps one process per workdir. It talks to models only through the contract
(`gan_tf.models.generative.GenerativeModel`), and to data through `gan_tf.data.open_source`.
"""

from gan_tf.training.config import MIXED_PRECISION, TrainConfig
from gan_tf.training.run import TrainResult, build_model, train

__all__ = ["MIXED_PRECISION", "TrainConfig", "TrainResult", "build_model", "train"]
