import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from gan_tf import ACGAN, CGAN, DCGAN, LAPGAN, MLPGAN, SNGAN, WGANGP, BigGAN, SelfConditionedGAN
from gan_tf.training.callbacks import latest_checkpoint
from gan_tf.training.distribute import is_chief, make_strategy, output_dir
from gan_tf.training import TrainConfig, train


def _one_step(model_class, model_kwargs, strategy, initial_weights, data):
    with strategy.scope():
        gan = model_class(latent_dim=8, seed=0, **model_kwargs)
        # SGD: the first Adam step is +-lr for any nonzero gradient, so rounding-level gradient
        # differences between 1 and 2 replicas show as lr-sized weight differences where a
        # gradient is ~1e-7 (WGAN-GP's generator has a few such weights).
        gan.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(0.01))
    gan.set_weights(initial_weights)
    history = gan.fit(data, epochs=1, verbose=0, shuffle=False).history
    return gan, history


# Dropout masks are drawn per replica, so dropout is off; the critic has none.
@pytest.mark.parametrize("model_class, model_kwargs", [(DCGAN, {"dropout": 0.0}), (CGAN, {"dropout": 0.0}),
                                                       (WGANGP, {"d_steps": 2}), (SNGAN, {}),
                                                       (ACGAN, {"dropout": 0.0}), (BigGAN, {}),
                                                       (LAPGAN, {"dropout": 0.0, "width": 8, "conditional": True}),
                                                       (DCGAN, {"dropout": 0.0, "augment": "color,translation,cutout"}),
                                                       (CGAN, {"dropout": 0.0, "augment": "color,translation,cutout"}),
                                                       (DCGAN, {"dropout": 0.0, "consistency_weight": 10.0}),
                                                       (SNGAN, {"augment": "color,translation,cutout", "ada_target": 0.6,
                                                                "ada_interval": 1, "ada_images": 80}),
                                                       (SelfConditionedGAN, {"num_clusters": 3, "cluster_images": 8})])
def test_one_step_on_two_replicas_equals_one_device(model_class, model_kwargs):
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (8, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, 8).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)  # one global batch
    first = model_class(latent_dim=8, seed=0, **model_kwargs)
    if hasattr(first, "fit_clusters"):  # the self-conditioned GAN: clusters of these images, in the weights
        first.fit_clusters(np.round((images + 1) * 127.5).astype(np.uint8))
    initial = first.get_weights()
    if model_kwargs.get("consistency_weight") or "translation" in model_kwargs.get("augment", ""):
        # Biases drawn off zero, as after any training step. At zero, the translation's fill (a
        # strip of exact zeros) gives pre-activations of exactly 0, on LeakyReLU's kink, where one
        # device's graph (Conv2D+BiasAdd+LeakyRelu fused by grappler) and the two replicas' (not
        # fused) may take different subgradients: bCR's D bias moved 3e-5 apart on an AVX-512 EPYC.
        bias_noise = np.random.default_rng(1)
        initial = [value + bias_noise.normal(0.0, 0.01, value.shape).astype(value.dtype)
                   if variable.path.endswith("bias") else value for variable, value in zip(first.weights, initial)]

    single, single_logs = _one_step(model_class, model_kwargs, tf.distribute.get_strategy(), initial, data)
    mirrored_strategy = make_strategy("mirrored", cpu_devices=2)
    assert mirrored_strategy.num_replicas_in_sync == 2
    mirrored, mirrored_logs = _one_step(model_class, model_kwargs, mirrored_strategy, initial, data)

    for name in single_logs:
        # atol: a mean near 0 (BigGAN's fake_score, -0.006) summed in another order on 2 replicas
        # differs by float32 rounding of its O(1) terms (6e-8 seen on an AMD EPYC), not by rtol.
        np.testing.assert_allclose(mirrored_logs[name], single_logs[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for network in ("generator", "discriminator"):
        for one, two in zip(getattr(single, network).get_weights(), getattr(mirrored, network).get_weights()):
            np.testing.assert_allclose(two, one, atol=1e-5, err_msg=network)
    for variable, a, init in zip(single.weights, single.get_weights(), initial):
        # The step really moved the weights; BigGAN's shared class embedding gets no gradient in a
        # first step, by design: it feeds only the conditional batch norms' zero-initialised gains.
        if init.ndim > 1 and "shared_embedding/" not in variable.path and "cluster_" not in variable.path:
            assert not np.allclose(a, init), variable.path
    assert int(mirrored.d_optimizer.iterations.numpy()) == mirrored.d_steps
    assert int(mirrored.g_optimizer.iterations.numpy()) == 1
    if model_kwargs.get("ada_target"):  # p moved by 8/80 one way or the other, from r_t over both replicas
        assert float(mirrored.augment_probability.numpy()) == float(single.augment_probability.numpy())
        expected = 0.1 if single_logs["d_real_sign"][-1] > 0.6 else 0.0
        assert float(single.augment_probability.numpy()) == pytest.approx(expected)


@pytest.mark.parametrize("model_class, model_kwargs", [(DCGAN, {"dropout": 0.0}), (SNGAN, {})])
def test_top_k_on_two_replicas_keeps_what_one_device_keeps(model_class, model_kwargs):
    """From the second G update on k is half the global batch of 8: the replicas agree on one
    threshold, so the 4 kept fakes, split between them in any way, are the one device's 4."""
    model_kwargs = {**model_kwargs, "top_k": 0.5, "top_k_decay": 0.5, "top_k_interval": 1}
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(8)  # two global batches
    initial = model_class(latent_dim=8, seed=0, **model_kwargs).get_weights()
    single, single_logs = _one_step(model_class, model_kwargs, tf.distribute.get_strategy(), initial, data)
    mirrored, mirrored_logs = _one_step(model_class, model_kwargs, make_strategy("mirrored", cpu_devices=2),
                                        initial, data)
    assert int(mirrored.g_optimizer.iterations.numpy()) == 2 and int(mirrored.top_k_count(8)) == 4
    for name in single_logs:
        np.testing.assert_allclose(mirrored_logs[name], single_logs[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for one, two in zip(single.generator.get_weights(), mirrored.generator.get_weights()):
        np.testing.assert_allclose(two, one, atol=1e-5)


def test_replicas_draw_different_slices_of_the_global_noise():
    strategy = make_strategy("mirrored", cpu_devices=2)
    with strategy.scope():
        gan = DCGAN(latent_dim=8, seed=3)
    per_replica = strategy.run(tf.function(lambda: gan.sample_noise(4)))
    first, second = [np.asarray(v) for v in strategy.experimental_local_results(per_replica)]
    assert first.shape == second.shape == (4, 8)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(np.concatenate([first, second]), DCGAN(latent_dim=8, seed=3).sample_noise(8))


def test_make_strategy_rejects_what_it_cannot_do(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy 'tpu'"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi_worker")
    with pytest.raises(ValueError, match="cpu_devices needs strategy='mirrored'"):
        make_strategy("default", cpu_devices=2)


class _Cluster:
    def __init__(self, cluster, task_type, task_id):
        self.cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
        )


def test_only_the_chief_keeps_outputs(tmp_path):
    workers = {"worker": ["localhost:1", "localhost:2"]}
    assert is_chief(tf.distribute.get_strategy())
    assert is_chief(_Cluster(workers, "worker", 0)) and not is_chief(_Cluster(workers, "worker", 1))
    with_chief = {"chief": ["localhost:0"], **workers}
    assert is_chief(_Cluster(with_chief, "chief", 0)) and not is_chief(_Cluster(with_chief, "worker", 0))
    with output_dir(str(tmp_path / "out"), _Cluster(workers, "worker", 1)) as path:
        os.makedirs(path)
        open(os.path.join(path, "x"), "w").write("temporary")
        temporary = path
    assert not os.path.exists(temporary) and not os.path.exists(tmp_path / "out")


def _config(tmp_path, **overrides):
    values = dict(model="mlp_gan", epochs=2, steps_per_epoch=3, batch_size=16, latent_dim=8,
                  workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), verbose=0)
    return TrainConfig(**{**values, **overrides})


def test_train_under_mirrored_strategy(tmp_path):
    result = train(_config(tmp_path, model="dcgan", strategy="mirrored", cpu_devices=2))
    assert int(result.model.g_optimizer.iterations.numpy()) == 6
    assert latest_checkpoint(str(tmp_path / "run" / "checkpoints"))[0].epochs == 2
    assert os.path.exists(os.path.join(result.export_path, "saved_model.pb"))


class _FirstWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.generator = [np.array(w) for w in self.model.generator.get_weights()]


def test_a_rerun_resumes_from_the_newest_checkpoint(tmp_path):
    train(_config(tmp_path, epochs=1))
    _, checkpoint = latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    saved = keras.saving.load_model(checkpoint).generator.get_weights()
    first = _FirstWeights()
    result = train(_config(tmp_path, epochs=3), callbacks=[first])

    assert len(result.history["d_loss"]) == 2  # epochs 2 and 3 only
    assert int(result.model.g_optimizer.iterations.numpy()) == 9  # as if never interrupted
    for restored, stored in zip(first.generator, saved):
        np.testing.assert_array_equal(restored, stored)
    fresh = MLPGAN(latent_dim=8, seed=0).generator.get_weights()
    assert any(not np.allclose(r, f) for r, f in zip(first.generator, fresh))


def test_noresume_refuses_to_overwrite_a_run(tmp_path):
    train(_config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="holds checkpoints of an earlier run"):
        train(_config(tmp_path, epochs=1, resume=False))


_TRAIN_CLI = os.path.join(REPO_ROOT, "train.py")


def test_sigkill_mid_training_then_rerun_finishes_with_every_step(tmp_path):
    flags = ["--model=mlp_gan", "--epochs=4", "--steps_per_epoch=150", "--batch_size=32", "--latent_dim=8",
             "--workdir=run", "--export_dir=export"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen([sys.executable, _TRAIN_CLI, *flags], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = str(tmp_path / "run" / "checkpoints")
    deadline = time.time() + 240
    while latest_checkpoint(checkpoints) is None and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    done_at_kill = latest_checkpoint(checkpoints)[0].epochs
    assert 1 <= done_at_kill < 4 and not os.path.exists(tmp_path / "export")

    rerun = subprocess.run([sys.executable, _TRAIN_CLI, *flags], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"({done_at_kill} of 4 epochs done)" in rerun.stdout
    position, path = latest_checkpoint(checkpoints)
    gan = keras.saving.load_model(path)
    assert position == (4, 0)
    assert int(gan.d_optimizer.iterations) == int(gan.g_optimizer.iterations) == 4 * 150
    assert os.path.exists(tmp_path / "export" / "1" / "saved_model.pb")


_WORKER = """
import json, os, signal, sys
import keras, numpy as np
from gan_tf.training import TrainConfig, train
from gan_tf.training.callbacks import TrainingPreempted
workdir, export_dir, out, epochs, steps, kill_at, term_at, term_worker = sys.argv[1:9]
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]

class Kill(keras.callbacks.Callback):  # SIGKILL at a given step, as a crash would; SIGTERM to one worker
    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
        if step == int(term_at) and index == int(term_worker):
            os.kill(os.getpid(), signal.SIGTERM)  # as a cloud preempting this machine does

try:
    result = train(TrainConfig(model="mlp_gan", epochs=int(epochs), steps_per_epoch=int(steps), batch_size=16,
                               latent_dim=8, workdir=workdir, export_dir=export_dir, strategy="multi_worker",
                               verbose=0, checkpoint_every_steps=5, deterministic=True), callbacks=[Kill()])
except TrainingPreempted as stop:
    print(stop, file=sys.stderr)
    sys.exit(75)
weights = result.model.generator.get_weights() + result.model.discriminator.get_weights()
np.savez(out, *weights, *[np.asarray(v) for v in result.model.optimizer.variables],
         iterations=int(result.model.g_optimizer.iterations.numpy()))
"""


def _start_workers(tmp_path, epochs, steps, kill_at=-1, run="run", term_at=-1, term_worker=-1):
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        worker_tmp = tmp_path / f"tmp{index}"
        worker_tmp.mkdir(exist_ok=True)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(worker_tmp), "PYTHONPATH": REPO_ROOT,
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-c", _WORKER, str(tmp_path / run), str(tmp_path / f"{run}_export"),
                   str(tmp_path / f"{run}_w{index}.npz"), str(epochs), str(steps), str(kill_at), str(term_at),
                   str(term_worker)]
        processes.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
    return processes


def _finish(processes):
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(stdout)
    return outputs


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_identical_generators_and_only_the_chief_writes(tmp_path):
    _finish(_start_workers(tmp_path, epochs=2, steps=3))
    chief, worker = np.load(tmp_path / "run_w0.npz"), np.load(tmp_path / "run_w1.npz")
    assert int(chief["iterations"]) == int(worker["iterations"]) == 6
    for key in chief.files:
        np.testing.assert_array_equal(chief[key], worker[key])
    assert sorted(os.listdir(tmp_path / "run")) == [
        "checkpoints", "history.csv", "logs", "loss_curves.png", "samples", "samples.png", "train_config.json"]
    assert sorted(os.listdir(tmp_path / "run_export")) == ["1"]  # one export, by the chief
    assert not [name for name in os.listdir(tmp_path / "tmp1") if name.startswith("gan_tf-worker-")]


@pytest.fixture(scope="module")
def uninterrupted_cluster(tmp_path_factory):
    """The weights of a 2-worker cluster trained 2 epochs of 20 steps without interruption."""
    tmp_path = tmp_path_factory.mktemp("reference")
    _finish(_start_workers(tmp_path, epochs=2, steps=20, run="reference"))
    return np.load(tmp_path / "reference_w0.npz")


def _assert_resumed_bit_identical(tmp_path, reference, position):
    outputs = _finish(_start_workers(tmp_path, epochs=2, steps=20))  # the cluster restarted
    for stdout in outputs:
        assert f"(1 of 2 epochs done, {position.steps} of 20 steps into epoch 2)" in stdout
    for worker in ("run_w0.npz", "run_w1.npz"):
        resumed = np.load(tmp_path / worker)
        assert int(resumed["iterations"]) == 40
        for key in reference.files:
            np.testing.assert_array_equal(resumed[key], reference[key])


@pytest.mark.parametrize("signalled", [1, 0], ids=["to the non-chief", "to the chief"])
def test_sigterm_to_one_worker_stops_the_cluster_at_one_common_checkpoint(tmp_path, uninterrupted_cluster, signalled):
    stopped = _start_workers(tmp_path, epochs=2, steps=20, term_at=27, term_worker=signalled)
    for index, process in enumerate(stopped):
        unused_stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 75, stderr[-3000:]  # every worker: saved, resumable
        by = "SIGTERM" if index == signalled else "a signal to another worker"
        assert f"Stopped by {by} at epoch 2, step 8: saved" in stderr, stderr[-2000:]
    position, _ = latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert position == (1, 8)  # the step after the signal's, on every worker, written by the chief
    if signalled == 1:  # the restart is the same whichever worker was signalled: once is enough
        _assert_resumed_bit_identical(tmp_path, uninterrupted_cluster, position)


def test_a_killed_cluster_resumes_at_the_chief_step_checkpoint_bit_identical(tmp_path, uninterrupted_cluster):
    killed = _start_workers(tmp_path, epochs=2, steps=20, kill_at=33)  # both workers die at step 33
    for process in killed:
        unused_stdout, stderr = process.communicate(timeout=300)
        # Each worker kills itself after step 33. One still in a collective with its peer when the
        # peer dies fails there instead (exit 1, seen once in the suite on a fast AVX-512 EPYC):
        # either way it ends without a clean exit or a saved stop, as a crash does.
        assert process.returncode not in (0, 75), stderr[-3000:]
    assert -signal.SIGKILL in [process.returncode for process in killed]
    position, _ = latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert position == (1, 10)  # the chief's checkpoint every 5 steps: step 30, in epoch 2
    _assert_resumed_bit_identical(tmp_path, uninterrupted_cluster, position)


def test_a_damaged_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, capsys):
    train(_config(tmp_path, epochs=2))
    directory = tmp_path / "run" / "checkpoints"
    newest = directory / "epoch_0002.keras"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as by a full disk or a bad copy
    result = train(_config(tmp_path, epochs=3))
    assert "epoch_0002.keras does not load" in capsys.readouterr().err
    assert len(result.history["d_loss"]) == 2  # epochs 2 and 3 redone from the end of epoch 1
    assert int(result.model.g_optimizer.iterations.numpy()) == 9


def test_no_loadable_checkpoint_stops_with_each_file_named(tmp_path):
    directory = tmp_path / "run" / "checkpoints"
    directory.mkdir(parents=True)
    (directory / "epoch_0001.keras").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="None of the checkpoints .* loads .*epoch_0001.keras"):
        train(_config(tmp_path, epochs=2))
    assert (directory / "epoch_0001.keras").read_bytes() == b"not a zip file"  # left as it was


def test_a_checkpoint_carrying_a_lambda_layer_is_refused(tmp_path):
    """Loading never runs code from a file: Keras's safe_mode refuses a Lambda layer's bytecode."""
    from gan_tf import GAN

    z = keras.Input((4,))
    generator = keras.Model(z, keras.layers.Reshape((2, 2, 1))(keras.layers.Lambda(lambda x: x * 2.0)(z)))
    images = keras.Input((2, 2, 1))
    discriminator = keras.Model(images, keras.layers.Dense(1)(keras.layers.Flatten()(images)))
    with pytest.raises(ValueError, match="keras.models.clone_model cannot copy this one .*pass ema_decay=None"):
        GAN(generator, discriminator, latent_dim=4, seed=0)  # the average's copy of G would need the lambda's code
    gan = GAN(generator, discriminator, latent_dim=4, seed=0, ema_decay=None)
    gan.compile()
    path = str(tmp_path / "lambda.keras")
    gan.save(path)
    with pytest.raises(ValueError, match="(?i)lambda.*unsafe|safe_mode"):
        keras.saving.load_model(path)


def test_a_live_runs_workdir_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    import json
    import socket
    import subprocess

    from gan_tf.training.workdir_lock import LOCK_FILE, WorkdirInUseError

    workdir = tmp_path / "run"
    workdir.mkdir()
    lock = workdir / LOCK_FILE
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": "now"}))  # alive
    with pytest.raises(WorkdirInUseError, match=f"in use by process {os.getpid()} on this machine"):
        train(_config(tmp_path, epochs=1))
    assert not (workdir / "checkpoints").exists()
    dead_pid = subprocess.Popen(["true"])  # a PID that no longer runs
    dead_pid.wait()
    lock.write_text(json.dumps({"pid": dead_pid.pid, "host": socket.gethostname()}))
    train(_config(tmp_path, epochs=1))
    assert f"stale lock {lock} of process {dead_pid.pid}" in capsys.readouterr().err
    assert not lock.exists()  # released when the run ends
    lock.write_text(json.dumps({"pid": 1, "host": "another-host"}))  # cannot be checked from here
    with pytest.raises(WorkdirInUseError, match="on host another-host"):
        train(_config(tmp_path, epochs=2))
