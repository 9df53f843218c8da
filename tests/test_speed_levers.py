"""The speed levers (steps_per_execution, XLA, mixed precision) and what each promises to keep."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gan_tf import DCGAN, MLPGAN
from gan_tf import data
from gan_tf.training import TrainConfig, build_model
from gan_tf.training.run import dtype_policy


@pytest.fixture(scope="module")
def digits():
    images, labels = data.load_arrays("mnist_5k")
    return images[:192], labels[:192]


def _dataset(digits, model_class, batch_size=32):
    images, labels = digits
    return data.make_dataset(images, labels, batch_size, value_range=model_class.value_range, seed=0)


def _make(model_class, policy="off", model_kwargs=None, **compile_kwargs):
    keras.utils.set_random_seed(0)  # same initial weights for every variant
    kwargs = {"num_classes": 10} if model_class.conditional else {}
    with dtype_policy(policy):
        gan = model_class(seed=0, **kwargs, **(model_kwargs or {}))
    gan.compile(**compile_kwargs)
    return gan


def _max_difference(weights_a, weights_b):
    return max(float(np.abs(a - b).max()) for a, b in zip(weights_a, weights_b))


class _LastBatchLogs(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_train_batch_end(self, batch, logs=None):
        self.last = {name: float(value) for name, value in logs.items()}

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append(self.last)


@pytest.mark.parametrize("model_class", [MLPGAN])  # the loop is Keras's: one model shows it
def test_steps_per_execution_trains_to_the_same_weights_and_logs(digits, model_class):
    # 6 batches per epoch: executions of 4 + 2. Each run gets its own pipeline: each pass over
    # a pipeline draws a new order.
    one = _make(model_class)
    one_history = one.fit(_dataset(digits, model_class), epochs=2, verbose=0).history
    four = _make(model_class, steps_per_execution=4)
    four_history = four.fit(_dataset(digits, model_class), epochs=2, verbose=0).history
    assert _max_difference(one.get_weights(), four.get_weights()) == 0.0
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        np.testing.assert_allclose(one_history[name], four_history[name], rtol=1e-6)
    np.testing.assert_array_equal(one.seed_generator.state.numpy(), four.seed_generator.state.numpy())


def test_epoch_logs_are_the_last_steps_running_means(digits):
    # Keras looks for the end of a finite dataset with one more call of the train step; none
    # of that call's ops may run (they once shrank every logged mean by N / (N + 1)).
    gan = _make(MLPGAN)
    batch_logs = _LastBatchLogs()
    history = gan.fit(_dataset(digits, MLPGAN), epochs=2, verbose=0, callbacks=[batch_logs]).history
    for epoch, last in enumerate(batch_logs.per_epoch):
        for name, value in last.items():
            assert history[name][epoch] == pytest.approx(value, rel=1e-6), name
    # 2 epochs x 6 steps x (D noise + G noise) draws, and not one more.
    assert gan.seed_generator.state.numpy()[1] == 2 * 6 * 2


def _with_fixed_noise(gan):
    """Makes every training noise draw the same tensor, so variants can be compared step by step."""
    noise = tf.random.stateless_normal((32, gan.latent_dim), seed=[1, 2])
    gan.sample_noise = lambda batch_size: noise
    return gan


@pytest.mark.parametrize("model_class", [MLPGAN, DCGAN])
def test_xla_computes_the_same_steps(digits, model_class):
    # XLA draws other random numbers from the same seeds (its own RNG), so the noise is fixed
    # and dropout is off here: given the same inputs, the compiled step does the same arithmetic.
    # SGD, not Adam: Adam's first steps are +-lr wherever a gradient is near 0, whatever its size.
    model_kwargs = {"dropout": 0.0} if model_class is DCGAN else {}
    trained = []
    for jit_compile in (False, True):
        gan = _make(model_class, model_kwargs=model_kwargs, jit_compile=jit_compile,
                    d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05))
        initial = gan.get_weights()
        _with_fixed_noise(gan).fit(_dataset(digits, model_class).take(3), verbose=0)
        trained.append(gan.get_weights())
    # Float rounding only: under 1% of how far training moved the weights.
    assert _max_difference(*trained) < 0.01 * _max_difference(initial, trained[0])


@pytest.mark.parametrize("policy, model_class", [("mixed_bfloat16", DCGAN), ("mixed_float16", MLPGAN)])
def test_mixed_precision_steps_stay_close_to_float32_with_float32_weights_and_outputs(digits, policy, model_class):
    # (float16 convolutions are emulated on CPU and slow: the float16 case uses the MLP GAN.)
    model_kwargs = {"dropout": 0.0} if model_class is DCGAN else {}
    reference = _with_fixed_noise(_make(model_class, model_kwargs=model_kwargs))
    reference_history = reference.fit(_dataset(digits, model_class).take(2), verbose=0).history
    mixed = _with_fixed_noise(_make(model_class, policy, model_kwargs=model_kwargs))
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored
    mixed_history = mixed.fit(_dataset(digits, model_class).take(2), verbose=0).history
    # float16 gets dynamic loss scaling, as keras.Model.compile gives it; bfloat16 needs none.
    scaled = isinstance(mixed.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16") and isinstance(mixed.g_optimizer, type(mixed.d_optimizer))
    assert all(w.dtype == "float32" for w in mixed.weights if w.dtype.startswith("float"))
    assert mixed.generator.layers[1].compute_dtype == policy.split("_")[1]  # the first Dense
    assert mixed.generator.output.dtype == mixed.discriminator.output.dtype == "float32"
    assert mixed.generate(3, seed=0).dtype == np.float32
    for name in ("d_loss", "g_loss"):
        assert mixed_history[name][0] == pytest.approx(reference_history[name][0], rel=0.03)
    # Adam moves a weight by up to ~lr per step whatever its gradient's size, so where rounding
    # flips a tiny gradient's sign two steps can differ by up to 4 lr, and by no more.
    learning_rate = float(keras.ops.convert_to_numpy(reference.g_optimizer.learning_rate))
    assert _max_difference(reference.get_weights(), mixed.get_weights()) <= 4 * learning_rate


def test_train_config_takes_the_levers_and_the_models_default(tmp_path):
    config = TrainConfig(model="mlp_gan").resolved()
    assert config.steps_per_execution == MLPGAN.default_steps_per_execution > 1
    assert TrainConfig(model="dcgan").resolved().steps_per_execution == DCGAN.default_steps_per_execution
    with pytest.raises(ValueError, match="steps_per_execution must be at least 1"):
        TrainConfig(steps_per_execution=0).validate()
    # Keras runs whole calls, so an epoch must hold a whole number of them.
    with pytest.raises(ValueError, match=r"steps_per_epoch \(10\) must be a multiple of steps_per_execution \(4\)"):
        TrainConfig(steps_per_epoch=10, steps_per_execution=4).validate()
    assert TrainConfig(model="mlp_gan", steps_per_epoch=12).resolved().steps_per_execution == 12
    assert TrainConfig(model="mlp_gan", steps_per_epoch=40).resolved().steps_per_execution == 10
    assert TrainConfig(model="mlp_gan", steps_per_epoch=3).resolved().steps_per_execution == 3
    # Keras 3.15's multi-step loop fails under tf.distribute: one step per call there.
    assert TrainConfig(model="mlp_gan", strategy="multi_worker").resolved().steps_per_execution == 1
    with pytest.raises(ValueError, match="steps_per_execution=4 works only with strategy='default'"):
        TrainConfig(strategy="mirrored", steps_per_execution=4).validate()
    with pytest.raises(ValueError, match="Unknown mixed_precision 'float8'.*mixed_bfloat16"):
        TrainConfig(mixed_precision="float8").validate()
    info = data.dataset_info("mnist_5k")
    gan = build_model(TrainConfig(model="mlp_gan", steps_per_execution=3, jit_compile=True,
                                  mixed_precision="mixed_bfloat16").resolved(), info)
    assert gan.steps_per_execution == 3 and gan.jit_compile is True
    assert gan.generator.layers[1].compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"
