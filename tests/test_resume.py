"""Nothing lost: step-level checkpoints, exact resume after SIGKILL, preemption, damaged state.

The end-to-end cases run `train()` in subprocesses that kill themselves (SIGKILL, so nothing is
flushed or cleaned up) at a chosen train step, then resume with the same config, and compare
every variable with an uninterrupted run's, bit for bit.
"""

import errno
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from gan_tf import DCGAN
from gan_tf import data
from gan_tf.data import open_source
from gan_tf.training.callbacks import CheckpointWriteError, Position, TrainingPreempted, latest_checkpoint, list_checkpoints
from gan_tf.training.monitoring import rewind_logs
from gan_tf.training import TrainConfig, train
from gan_tf.training.workdir_lock import WorkdirUnwritableError

# -------------------------------------------------------------------------------- the parts


def _labels(dataset):
    return np.concatenate([labels.numpy() for _, labels in dataset])


def test_a_stream_started_at_batch_b_is_the_stream_after_its_first_b_batches():
    labels = np.arange(10)
    images = np.zeros((10, 1, 1, 1), np.uint8)
    whole = _labels(data.make_dataset(images, labels, batch_size=3, seed=5, repeat=True).take(9))
    for start in (0, 2, 3, 4, 7):  # within the first pass, at its end, and in later passes
        resumed = _labels(data.make_dataset(images, labels, batch_size=3, seed=5, repeat=True, start_batch=start)
                          .take(9 - start))
        np.testing.assert_array_equal(resumed, whole[3 * start:])


def test_a_streaming_source_resumes_its_stream_too(tmp_path):
    from PIL import Image

    for index in range(12):
        Image.fromarray(np.full((4, 4), index * 20, np.uint8)).save(tmp_path / f"{index:02d}.png")
    source = open_source(f"folder:{tmp_path}", in_memory=False)
    assert not source.in_memory

    def pixels(dataset):
        return np.concatenate([images.numpy()[:, 0, 0, 0] for images, _ in dataset])

    whole = pixels(source.dataset(4, value_range=(0.0, 255.0), seed=3, repeat=True).take(7))
    assert sorted(whole[:12]) == [20.0 * k for k in range(12)] and not np.array_equal(whole[:12], whole[12:24])
    resumed = pixels(source.dataset(4, value_range=(0.0, 255.0), seed=3, repeat=True, start_batch=4).take(3))
    np.testing.assert_array_equal(resumed, whole[16:])


def test_every_random_stream_and_the_running_means_are_saved_with_the_model(tmp_path):
    gan = DCGAN(latent_dim=8, dropout=0.3, seed=0)  # D's dropout: a random stream of its own
    gan.compile()
    images = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    streams = [np.asarray(v) for v in gan.random_streams()]
    assert len(streams) == 3  # the noise and D's two Dropout layers
    trackers = [np.asarray(v) for v in gan.tracker_variables()]
    assert trackers[1] == 16  # d_loss's count: one per image
    gan.save(tmp_path / "gan.keras")

    fresh = DCGAN(latent_dim=8, dropout=0.3, seed=0)
    fresh.compile()
    assert not all(np.array_equal(a, np.asarray(b)) for a, b in zip(streams, fresh.random_streams()))
    fresh.load_weights(tmp_path / "gan.keras")
    for saved, loaded in zip(streams + trackers, fresh.random_streams() + fresh.tracker_variables()):
        np.testing.assert_array_equal(saved, np.asarray(loaded))


def _write_events(log_dir, tag, steps):
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for step in steps:
            tf.summary.scalar(tag, float(step), step=step)
    writer.close()


def _steps(log_dir, tag):
    from tensorflow.core.util import event_pb2

    found = []
    for name in sorted(os.listdir(log_dir)):
        if "tfevents" not in name:
            continue
        for record in tf.data.TFRecordDataset(os.path.join(log_dir, name)).as_numpy_iterator():
            event = event_pb2.Event.FromString(record)
            found += [event.step for value in event.summary.value if value.tag == tag]
    return found


def test_rewinding_the_logs_drops_what_later_epochs_and_earlier_starts_wrote(tmp_path):
    from tensorboard.plugins.hparams import api as hp

    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,d_loss\n0,1.5\n1,1.4\n2,1.3\n3,1.2\n")
    train_dir = tmp_path / "logs" / "train"
    _write_events(train_dir, "epoch_d_loss", [0, 1, 2, 3])
    writer = tf.summary.create_file_writer(str(tmp_path / "logs"))
    with writer.as_default():
        hp.hparams({"batch_size": 64})
    writer.close()
    (train_dir / "events.out.tfevents.cut.v2").write_bytes(b"\x10\x00\x00")  # a record cut short by a kill

    rewind_logs(str(tmp_path / "logs"), str(csv_path), epochs=2)

    assert csv_path.read_text().splitlines() == ["epoch,d_loss", "0,1.5", "1,1.4"]
    assert _steps(train_dir, "epoch_d_loss") == [0, 1]
    assert _steps(tmp_path / "logs", "_hparams_/session_start_info") == []
    assert not [name for name in os.listdir(train_dir) if name.startswith(".tmp-")]
    rewind_logs(str(tmp_path / "logs"), str(csv_path), epochs=0)  # a run killed in its first epoch
    assert csv_path.read_text().splitlines() == ["epoch,d_loss"] and _steps(train_dir, "epoch_d_loss") == []


# ------------------------------------------------------------------------------- whole runs

# Trains in a child process; with a KILL_AT step it SIGKILLs itself right after that step's
# callbacks (the checkpoint callback among them) ran, as a crash or the OOM killer would.
_RUN = """
import json, os, signal, sys
import keras, numpy as np
from gan_tf.training import TrainConfig, train
config, kill_at, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class Kill(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

result = train(TrainConfig(**config), callbacks=[Kill()])
np.savez(out, *[np.asarray(v) for v in result.model.variables + result.model.optimizer.variables])
"""


def _run(config, kill_at, out):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT}
    return subprocess.run([sys.executable, "-c", _RUN, json.dumps(config), str(kill_at), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


def _tiny(tmp_path, workdir, **fields):
    return {"model": "cgan", "epochs": 3, "steps_per_epoch": 5, "batch_size": 16, "latent_dim": 8,
            "eval_every": 0, "checkpoint_every_steps": 2, "deterministic": True, "verbose": 0,
            "workdir": str(tmp_path / workdir), "export_dir": str(tmp_path / workdir / "export"), **fields}


def _epoch_steps(workdir):
    return sorted(_steps(os.path.join(workdir, "logs", "train"), "epoch_d_loss"))


def test_a_run_killed_mid_epoch_resumes_at_its_step_and_ends_bit_identical(tmp_path):
    """CGAN: dropout, a weight average, the wrong-label draws of the matching-aware loss."""
    reference = _run(_tiny(tmp_path, "reference"), kill_at=-1, out=tmp_path / "reference.npz")
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed = _run(_tiny(tmp_path, "run"), kill_at=8, out=tmp_path / "unused.npz")  # epoch 2, step 3
    assert killed.returncode == -signal.SIGKILL
    assert [position for position, _ in list_checkpoints(str(tmp_path / "run" / "checkpoints"))] == [
        Position(1, 1), Position(1, 3)]  # every 2 steps counted from the start (steps 6 and 8), 2 kept
    resumed = _run(_tiny(tmp_path, "run"), kill_at=-1, out=tmp_path / "resumed.npz")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "(1 of 3 epochs done, 3 of 5 steps into epoch 2)" in resumed.stdout

    expected, actual = np.load(tmp_path / "reference.npz"), np.load(tmp_path / "resumed.npz")
    assert len(expected.files) == len(actual.files) > 30
    for key in expected.files:
        np.testing.assert_array_equal(actual[key], expected[key])
    # Each epoch logged once, with the values of the uninterrupted run (epoch 2's mean covers
    # the steps before the kill too).
    assert (tmp_path / "run" / "history.csv").read_text() == (tmp_path / "reference" / "history.csv").read_text()
    assert _epoch_steps(tmp_path / "run") == _epoch_steps(tmp_path / "reference") == [0, 1, 2]


def test_sigterm_saves_the_current_step_and_the_next_start_continues(tmp_path):
    config = _tiny(tmp_path, "run", model="dcgan", checkpoint_every_steps=None)

    class Preempt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations) == 7:
                signal.raise_signal(signal.SIGTERM)  # what a cluster scheduler sends

    with pytest.raises(TrainingPreempted, match=r"Stopped by SIGTERM at epoch 2, step 3: saved .*epoch_0001_step_000003"):
        train(TrainConfig(**config), callbacks=[Preempt()])
    # The checkpoint callback had run for step 7 before the signal: it saved at step 8.
    assert latest_checkpoint(str(tmp_path / "run" / "checkpoints"))[0] == Position(1, 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back
    result = train(TrainConfig(**config))
    assert int(result.model.g_optimizer.iterations) == 15
    assert len(result.history["d_loss"]) == 2 and _epoch_steps(tmp_path / "run") == [0, 1, 2]


def test_a_signal_before_training_began_stops_it_before_the_first_step(tmp_path):
    from gan_tf.training.callbacks import PreemptionSignals, RunCheckpoint

    gan = DCGAN(latent_dim=8, seed=0)
    gan.compile()
    preemption = PreemptionSignals()
    preemption.received = "SIGINT"  # arrived while the data were loading
    with pytest.raises(TrainingPreempted, match="Stopped by SIGINT before training began; nothing new to save"):
        gan.fit(tf.data.Dataset.from_tensor_slices(np.zeros((8, 28, 28, 1), np.float32)).batch(4), verbose=0,
                callbacks=[RunCheckpoint(str(tmp_path), steps_per_epoch=2, preemption=preemption)])
    assert int(gan.g_optimizer.iterations) == 0 and not os.listdir(tmp_path)


def test_the_cli_exits_75_on_sigterm_with_a_message(tmp_path):
    flags = ["--model=mlp_gan", "--epochs=50", "--steps_per_epoch=400", "--batch_size=16", "--latent_dim=8",
             "--eval_every=0", "--checkpoint_every_steps=100", "--workdir=run", "--export_dir=export"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "train.py"), *flags], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoints = str(tmp_path / "run" / "checkpoints")
    import time

    deadline = time.time() + 240
    while latest_checkpoint(checkpoints) is None and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 75, stderr[-2000:]
    assert "train.py: Stopped by SIGTERM at epoch" in stderr and "Run the same command to continue" in stderr
    assert "Traceback" not in stderr
    assert not os.path.exists(tmp_path / "run" / ".gan_tf.lock")


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    config = TrainConfig(**_tiny(tmp_path, "run", model="mlp_gan", checkpoint_every_steps=None))
    saves = []
    real_save = keras.Model.save

    def save_until_the_disk_fills(model, path, *args, **kwargs):
        saves.append(path)
        if len(saves) < 2:
            return real_save(model, path, *args, **kwargs)
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 partial")  # what a full disk leaves of the temporary file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_fills)
    with pytest.raises(CheckpointWriteError, match=r"Cannot write checkpoint .*epoch_0002.keras: No space left on "
                                                   r"device. The newest complete checkpoint, .*epoch_0001.keras, is intact"):
        train(config)
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["epoch_0001.keras"]  # no temporary file left
    monkeypatch.setattr(keras.Model, "save", real_save)
    result = train(config)  # once there is space again, it resumes after epoch 1
    assert len(result.history["d_loss"]) == 2 and int(result.model.g_optimizer.iterations) == 15


def test_an_unwritable_workdir_is_refused_with_a_message(tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    with pytest.raises(WorkdirUnwritableError, match="Cannot write to the workdir .*a_file/run"):
        train(TrainConfig(**_tiny(tmp_path, "a_file/run", model="mlp_gan")))


def test_a_resumed_run_keeps_the_model_arguments_it_started_with(tmp_path):
    """A default that changed since a run began (ema_decay) does not stop the same command from
    resuming it: the arguments come from its newest readable checkpoint, unless given again."""
    from gan_tf.training import TrainConfig
    from gan_tf.training.run import arguments_the_run_started_with

    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    old = DCGAN(latent_dim=8, width=8, dropout=0.2, ema_decay=None, seed=0)
    old.compile()
    old.save(str(checkpoints / "epoch_0001.keras"))
    (checkpoints / "epoch_0002.keras").write_bytes(b"truncated")  # skipped: its predecessor is read
    config = TrainConfig(model="dcgan", workdir=str(tmp_path / "run"), model_args={"dropout": 0.4})
    started_with = arguments_the_run_started_with(config)
    assert started_with["ema_decay"] is None and started_with["width"] == 8 and started_with["latent_dim"] == 8
    assert "dropout" not in started_with  # given again: the flag wins
    assert not {"image_shape", "seed", "name", "generator"} & set(started_with)  # from the data and the run
    assert arguments_the_run_started_with(TrainConfig(model="dcgan", workdir=str(tmp_path / "run"), resume=False)) == {}
    assert arguments_the_run_started_with(TrainConfig(model="dcgan", workdir=str(tmp_path / "new"))) == {}


def test_a_run_saved_before_an_argument_existed_resumes_with_what_it_was_trained_with(tmp_path):
    """LAPGAN's checkpoints written before it kept an average of G's weights have no `ema_decay`
    in their config; the same command resumes them without one (so the weights fit), as
    `LAPGAN.older_config_defaults` says, and a flag given again still wins."""
    import json
    import zipfile

    from gan_tf.models import LAPGAN
    from gan_tf.training import TrainConfig, train
    from gan_tf.training.run import arguments_the_run_started_with

    common = dict(model="lapgan", max_examples=32, batch_size=16, eval_every=0, verbose=0,
                  workdir=str(tmp_path / "run"), export_dir=str(tmp_path / "export"), model_args={"width": 4})
    first = train(TrainConfig(epochs=1, **{**common, "model_args": {"width": 4, "ema_decay": None}}))
    assert first.model.ema_generator is None
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_0001.keras"
    with zipfile.ZipFile(checkpoint) as archive:  # rewritten as a version before the argument saved it
        files = {name: archive.read(name) for name in archive.namelist()}
    saved = json.loads(files["config.json"])
    del saved["config"]["ema_decay"]
    files["config.json"] = json.dumps(saved).encode()
    with zipfile.ZipFile(checkpoint, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    assert LAPGAN.older_config_defaults == {"ema_decay": None}
    assert arguments_the_run_started_with(TrainConfig(epochs=2, **common))["ema_decay"] is None
    resumed = train(TrainConfig(epochs=2, **common))
    assert resumed.model.ema_generator is None and int(resumed.model.g_optimizer.iterations) == 4
    again = TrainConfig(epochs=2, **{**common, "model_args": {"width": 4, "ema_decay": 0.99}})
    assert "ema_decay" not in arguments_the_run_started_with(again)  # given again: the flag wins


def test_a_resumed_run_keeps_the_batch_size_it_started_with(tmp_path):
    """A model's default batch size may change between versions: a run resumed without
    --batch_size keeps its own (train_config.json), so its steps per epoch do not change."""
    import json

    from gan_tf.training import TrainConfig, train

    common = dict(model="dcgan", max_examples=48, eval_every=0, verbose=0, workdir=str(tmp_path / "run"),
                  export_dir=str(tmp_path / "export"), model_args={"latent_dim": 8, "width": 8})
    first = train(TrainConfig(epochs=1, batch_size=16, **common))
    assert int(first.model.g_optimizer.iterations) == 3  # 48 images in batches of 16
    assert json.load(open(tmp_path / "run" / "train_config.json"))["batch_size"] == 16
    resumed = train(TrainConfig(epochs=2, **common))  # no batch size: the run's own, not the default
    assert int(resumed.model.g_optimizer.iterations) == 6
    assert json.load(open(tmp_path / "run" / "train_config.json"))["batch_size"] == 16
    fresh = train(TrainConfig(epochs=1, **{**common, "workdir": str(tmp_path / "new")}))  # a new run: the default
    assert DCGAN.default_batch_size == 32 and int(fresh.model.g_optimizer.iterations) == 1
