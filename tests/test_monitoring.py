import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from conftest import tiny_batches
from gan_tf.data import classifiers
from gan_tf.training import monitoring
from conftest import GANS
from gan_tf.models import MODELS
from gan_tf.training import TrainConfig, train


def _events(run_dir):
    """`{tag: [(step, value), ...]}` of a TensorBoard run directory (scalars as floats, images as arrays)."""
    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    tags = {}
    for tag in accumulator.Tags()["tensors"]:
        values = []
        for event in accumulator.Tensors(tag):
            array = tf.make_ndarray(event.tensor_proto)
            if array.dtype == object:  # an image summary: [width, height, png...]
                array = tf.io.decode_png(array[2]).numpy()
            values.append((event.step, array))
        tags[tag] = values
    return tags


def _hparams(run_dir):
    """The hparams a run recorded, as `{name: value}`."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = event_accumulator.EventAccumulator(str(run_dir))
    accumulator.Reload()
    (content,) = accumulator.PluginTagToContent("hparams").values()
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {name: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind")) for name, value in start.hparams.items()}


@pytest.mark.parametrize("model", sorted(GANS))
def test_keras_tensorboard_logs_learning_rates_and_steps_per_second(tmp_path, model):
    gan = MODELS[model](latent_dim=8, seed=0)
    gan.compile()
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.5)
    gan.fit(tiny_batches(3, value_range=gan.value_range), epochs=2, verbose=0,
            callbacks=[halve, keras.callbacks.TensorBoard(str(tmp_path), write_steps_per_second=True)])

    tags = _events(tmp_path / "train")
    initial_d, initial_g = (float(o.learning_rate) * 4 for o in (gan.d_optimizer, gan.g_optimizer))
    assert [v for _, v in tags["epoch_learning_rate_discriminator"]] == pytest.approx([initial_d / 2, initial_d / 4])
    assert [v for _, v in tags["epoch_learning_rate_generator"]] == pytest.approx([initial_g / 2, initial_g / 4])
    assert all(v > 0 for _, v in tags["epoch_steps_per_second"])
    assert {f"epoch_{metric.name}" for metric in gan.metrics} <= set(tags)
    assert int(gan.optimizer.iterations) == 6  # one per train step (the generator's updates)


@pytest.fixture(scope="module")
def quick_classifier_cache(tmp_path_factory):
    """A one-epoch mnist_5k classifier in a cache of its own, so training runs need not train the real one."""
    cache = str(tmp_path_factory.mktemp("quick_classifier"))
    model, accuracy = classifiers.train_classifier("mnist_5k", epochs=1)
    classifiers.save_classifier(model, "mnist_5k", accuracy, cache_dir=cache)
    previous = os.environ.get("GAN_TF_CACHE")
    os.environ["GAN_TF_CACHE"] = cache
    yield cache
    if previous is None:
        del os.environ["GAN_TF_CACHE"]
    else:
        os.environ["GAN_TF_CACHE"] = previous


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory, quick_classifier_cache):
    """A tiny CGAN run with every monitor on, evaluating after each of its two epochs."""
    root = tmp_path_factory.mktemp("monitored")
    config = TrainConfig(model="cgan", epochs=2, steps_per_epoch=3, batch_size=16, latent_dim=8,
                         eval_every=1, eval_samples=100, workdir=str(root / "run"),
                         export_dir=str(root / "export"), verbose=0)
    return root, train(config)


def test_train_logs_sample_grids_every_epoch(monitored_run):
    root, _ = monitored_run
    grids = _events(root / "run" / "logs" / "samples")["samples"]
    assert [step for step, _ in grids] == [0, 1]
    assert all(grid.shape == (280, 280, 1) for _, grid in grids)  # 10 x 10 digits, one class per row
    assert grids[0][1].std() > 0


def test_train_logs_quality_metrics_next_to_their_floor(monitored_run):
    root, result = monitored_run
    generated = _events(root / "run" / "logs" / "samples")
    floor = _events(root / "run" / "logs" / "real_floor")
    for name in ("fid", "kid", "precision", "recall", "classifier_score", "classes_covered", "label_accuracy"):
        assert [step for step, _ in generated[f"quality/{name}"]] == [0, 1]
        assert [step for step, _ in floor[f"quality/{name}"]] == [0, 1]
    last_fid = float(generated["quality/fid"][-1][1])
    assert last_fid == pytest.approx(result.metrics["generated"]["fid"], rel=1e-5)
    assert float(floor["quality/fid"][-1][1]) < last_fid  # 6 updates are far from real digits
    assert result.metrics["epoch"] == 2 and result.metrics["num_samples"] == 100


def test_train_records_hparams_loss_curves_and_the_last_grid(monitored_run):
    root, _ = monitored_run
    run = root / "run"
    hparams = _hparams(run / "logs")
    assert hparams["model"] == "cgan" and hparams["batch_size"] == 16 and hparams["eval_every"] == 1
    assert hparams["learning_rate_discriminator"] == pytest.approx(2e-4) and hparams["real_label"] == pytest.approx(0.9)
    assert hparams["mismatch_weight"] == pytest.approx(1.0) and hparams["width"] == 64  # from get_config
    assert "workdir" not in hparams
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [0, 1]
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(rows[0])
    curves = tf.io.decode_png(tf.io.read_file(str(run / "loss_curves.png"))).numpy()
    assert curves.shape[0] > 200 and curves.shape[1] > 600
    last_grid = tf.io.decode_png(tf.io.read_file(str(run / "samples.png"))).numpy()
    assert last_grid.shape[:2] == (280, 280)
    np.testing.assert_array_equal(last_grid, tf.io.decode_png(tf.io.read_file(str(run / "samples" / "epoch_0002.png"))).numpy())


def test_train_splits_its_wall_time_by_kind_of_work_in_the_result_and_tensorboard(monitored_run):
    root, result = monitored_run
    split = result.time_split
    assert list(split) == ["setup", "steps", "evaluation", "previews", "checkpoints", "export", "other"]
    assert all(seconds >= 0 for seconds in split.values())
    for kind in ("setup", "steps", "evaluation", "previews", "checkpoints", "export"):
        assert split[kind] > 0, kind  # every kind of work happened in this run
    assert split["steps"] <= result.seconds  # the steps are part of the fit calls' time
    logged = _events(root / "run" / "logs")
    for kind, seconds in split.items():
        assert [step for step, _ in logged[f"time/{kind}_seconds"]] == [2]
        assert float(logged[f"time/{kind}_seconds"][0][1]) == pytest.approx(seconds, rel=1e-5)
    assert sum(float(logged[f"time/{kind}_share"][0][1]) for kind in split) == pytest.approx(1.0, rel=1e-5)


def test_the_run_clock_adds_each_kind_and_leaves_the_rest_to_other():
    from gan_tf.training.callbacks import RunClock
    from gan_tf.training.monitoring import time_summary

    clock = RunClock()
    with clock.timing("checkpoints"):
        pass
    clock.seconds["steps"] += 3.0
    with pytest.raises(ValueError, match="Unknown kind of work 'naps'"):
        with clock.timing("naps"):
            pass
    split = clock.split(total=4.0)
    assert split["steps"] == 3.0 and 0 <= split["checkpoints"] < 0.5
    assert split["other"] == pytest.approx(1.0 - split["checkpoints"]) and sum(split.values()) == pytest.approx(4.0)
    assert clock.split(total=1.0)["other"] == 0.0  # never negative
    assert time_summary({"steps": 3.0, "other": 1.0}) == "Time: 4 s: steps 3 s (75%), other 1 s (25%)."


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, body=None):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_real_tensorboard_server_serves_the_scalars_images_and_hparams(monitored_run):
    root, _ = monitored_run
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={root}", "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                runs = _get(f"{base}/data/runs")
                if "run/logs/samples" in runs:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read()[-2000:]
            assert time.time() < deadline, "TensorBoard did not serve the runs within 90 s"
            time.sleep(1)
        scalars = _get(f"{base}/data/plugin/scalars/tags")
        assert {"epoch_d_loss", "epoch_g_loss", "epoch_learning_rate_generator", "epoch_steps_per_second"} <= set(scalars["run/logs/train"])
        assert {"quality/fid", "quality/label_accuracy"} <= set(scalars["run/logs/samples"])
        assert "quality/fid" in scalars["run/logs/real_floor"]
        images = _get(f"{base}/data/plugin/images/tags")
        assert images["run/logs/samples"]["samples"]["samples"] == 1
        experiment = _get(f"{base}/data/plugin/hparams/experiment", body={"experimentName": ""})
        hparams = {info["name"] for info in experiment["hparamInfos"]}
        assert {"model", "batch_size", "learning_rate_discriminator", "real_label", "seed"} <= hparams
        metrics = {(m["name"]["group"], m["name"]["tag"]) for m in experiment["metricInfos"]}
        assert ("samples", "quality/fid") in metrics and ("train", "epoch_g_loss") in metrics
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_read_history_keeps_the_newest_row_of_each_epoch(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,d_loss,g_loss\n0,1.5,0.7\n1,1.4,0.8\n1,1.3,0.9\n2,1.2,")
    history = monitoring.read_history(str(path))
    assert history["epoch"] == [0.0, 1.0, 2.0]
    assert history["d_loss"] == [1.5, 1.3, 1.2]
    assert history["g_loss"][:2] == [0.7, 0.9] and np.isnan(history["g_loss"][2])
    assert monitoring.read_history(str(tmp_path / "missing.csv")) == {}


def test_samples_monitor_without_evaluator_logs_only_grids(tmp_path):
    gan = MODELS["dcgan"](latent_dim=8, seed=0)
    gan.compile()
    monitor = monitoring.TensorBoardSamples(str(tmp_path / "samples"), rows=2, columns=3, png_directory=str(tmp_path / "png"))
    gan.fit(tiny_batches(1), epochs=1, verbose=0, callbacks=[monitor])
    tags = _events(tmp_path / "samples")
    assert list(tags) == ["samples"] and tags["samples"][0][1].shape == (56, 84, 1)
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "png" / "epoch_0001.png"))).numpy()
    assert png.shape[:2] == (56, 84)
    assert monitor.latest_metrics is None
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        monitoring.TensorBoardSamples(str(tmp_path), eval_every=-1)


def test_quality_summary_names_fid_for_images_and_every_metric_otherwise():
    from gan_tf.training.monitoring import quality_summary

    images = {"epoch": 20, "generated": {"fid": 86.71, "kid": 3.2, "class_histogram": [0.1] * 10},
              "floor": {"fid": 10.24}}
    assert quality_summary(images) == "FID after epoch 20: 86.7 (real data: 10.2)."
    # A melody model's report (MelodyEvaluator) has no FID: every scalar, next to the real bars'.
    melodies = {"epoch": 20, "generated": {"scale_consistency": 0.8431, "chord_tone_ratio": 0.431, "pitch_histogram": [0.5]},
                "floor": {"scale_consistency": 0.971, "chord_tone_ratio": 0.505}, "baseline": {}}
    assert quality_summary(melodies) == ("Quality after epoch 20 (model / real data): scale_consistency 0.843 / 0.971, "
                                         "chord_tone_ratio 0.431 / 0.505.")
