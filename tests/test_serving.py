import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from gan_tf import CGAN, DCGAN, MLPGAN
from gan_tf.serving import client
from gan_tf.serving.export import MAX_SAMPLES, METADATA_FILE, WARMUP_FILE, export_generator
from serving_standins import GrpcStandIn, RestStandIn

LATENT = 8
MODELS = {
    "mlp_gan": lambda: MLPGAN(latent_dim=LATENT, hidden_units=16, seed=0),
    "dcgan": lambda: DCGAN(latent_dim=LATENT, seed=0),
    "cgan": lambda: CGAN(latent_dim=LATENT, num_classes=10, seed=0),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Each model and its export under <tmp>/<name>/1."""
    base = tmp_path_factory.mktemp("exports")
    result = {}
    for name, make in MODELS.items():
        gan = make()
        names = [f"class {k}" for k in range(10)] if gan.conditional else None
        result[name] = (gan, export_generator(gan, str(base / name), class_names=names, training_config={"epochs": 3}))
    return result


# Runs every signature of an export in a fresh Python process and saves the outputs.
_PROBE = """
import sys, numpy as np, tensorflow as tf
path, out, conditional, latent = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
sigs = tf.saved_model.load(path).signatures
z = np.random.default_rng(0).normal(size=(4, latent)).astype("float32")
extra = {"labels": tf.constant([7, 7, 3, 3])} if conditional else {}
one_label = {"labels": tf.constant([7])} if conditional else {}
results = {"z": z}
for key, value in sigs["serving_default"](z=tf.constant(z), **extra).items():
    results["default_" + key] = value.numpy()
for key, value in sigs["sample"](num_samples=tf.constant(5), **one_label).items():
    results["sample_" + key] = value.numpy()
for key, value in sigs["sample_seeded"](num_samples=tf.constant(5), seed=tf.constant(11, tf.int64), **one_label).items():
    results["seeded_" + key] = value.numpy()
for key, value in sigs["metadata"]().items():
    value = np.asarray(value.numpy())
    results["meta_" + key] = value.astype(bytes).astype(str) if value.dtype.kind in "OS" else value
np.savez(out, **results)
"""


@pytest.mark.parametrize("name", list(MODELS))
def test_every_signature_in_a_fresh_process(exports, name, tmp_path):
    gan, path = exports[name]
    out = str(tmp_path / "outputs.npz")
    subprocess.run(
        [sys.executable, "-c", _PROBE, path, out, "1" if gan.conditional else "0", str(LATENT)],
        check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    got = dict(np.load(out))
    low, high = gan.value_range
    image_shape = gan.generator.output_shape[1:]

    for prefix, count in (("default_", 4), ("sample_", 5), ("seeded_", 5)):
        images, images_uint8 = got[prefix + "images"], got[prefix + "images_uint8"]
        assert images.shape == images_uint8.shape == (count,) + image_shape
        assert images.dtype == np.float32 and images_uint8.dtype == np.uint8
        assert low <= images.min() and images.max() <= high
        np.testing.assert_array_equal(images_uint8, np.round((images - low) / (high - low) * 255).astype(np.uint8))

    # serving_default is the Keras generator; label k gives what the model makes for k.
    inputs = [got["z"], tf.constant([7, 7, 3, 3])] if gan.conditional else got["z"]
    np.testing.assert_allclose(got["default_images"], gan(inputs).numpy(), atol=1e-5)
    # sample_seeded reproduces gan.generate(seed=...): a client gets the images a user saw.
    expected = gan.generate(labels=[7] * 5, seed=11) if gan.conditional else gan.generate(5, seed=11)
    np.testing.assert_allclose(got["seeded_images"], expected, atol=1e-5)

    assert got["meta_latent_dim"] == LATENT
    np.testing.assert_array_equal(got["meta_image_shape"], image_shape)
    np.testing.assert_array_equal(got["meta_value_range"], gan.value_range)
    assert got["meta_max_samples"] == MAX_SAMPLES
    metadata = json.loads(str(got["meta_metadata_json"]))
    assert metadata["training_config"] == {"epochs": 3} and metadata["conditional"] == gan.conditional
    if gan.conditional:
        assert list(got["meta_class_names"]) == [f"class {k}" for k in range(10)]


def test_cgan_sample_gives_the_requested_classes(exports):
    gan, path = exports["cgan"]
    sample = tf.saved_model.load(path).signatures["sample_seeded"]
    per_sample = sample(num_samples=tf.constant(3), seed=tf.constant(2, tf.int64), labels=tf.constant([0, 5, 9]))
    expected = gan.generate(labels=[0, 5, 9], seed=2)
    np.testing.assert_allclose(per_sample["images"].numpy(), expected, atol=1e-5)


def _invalid(signature, message, **inputs):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signature(**inputs)


def test_bad_inputs_are_rejected_with_clear_errors(exports):
    signatures = tf.saved_model.load(exports["cgan"][1]).signatures
    serve, sample = signatures["serving_default"], signatures["sample"]
    one = tf.constant([1])
    _invalid(sample, "num_samples must be >= 0", num_samples=tf.constant(-1), labels=one)
    _invalid(sample, f"num_samples must be <= {MAX_SAMPLES}", num_samples=tf.constant(MAX_SAMPLES + 1), labels=one)
    _invalid(sample, "labels must be < num_classes=10", num_samples=tf.constant(2), labels=tf.constant([10]))
    _invalid(sample, "labels must be >= 0", num_samples=tf.constant(1), labels=tf.constant([-1]))
    _invalid(sample, "1 label .* or num_samples labels", num_samples=tf.constant(3), labels=tf.constant([1, 2]))
    _invalid(serve, "same batch size", z=tf.zeros((2, LATENT)), labels=one)
    _invalid(serve, "labels must be < num_classes", z=tf.zeros((1, LATENT)), labels=tf.constant([12]))
    _invalid(serve, rf"z must have shape \(batch, {LATENT}\)", z=tf.zeros((1, LATENT + 1)), labels=one)
    unconditional = tf.saved_model.load(exports["dcgan"][1]).signatures["serving_default"]
    # The message is the CPU kernel's: it differs between machines' kernels.
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a matrix|ndims must be >= 2|different ndims"):
        unconditional(z=tf.zeros((LATENT,)))
    assert sample(num_samples=tf.constant(MAX_SAMPLES), labels=one)["images"].shape[0] == MAX_SAMPLES


def _saved_model_cli(*args):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return subprocess.run([cli, *args], capture_output=True, text=True)


def test_saved_model_cli_shows_and_runs_the_export(exports):
    path = exports["mlp_gan"][1]
    shown = _saved_model_cli("show", "--all", "--dir", path)
    assert shown.returncode == 0, shown.stderr[-1000:]
    for text in ("signature_def['serving_default']", "signature_def['sample']", "signature_def['sample_seeded']",
                 "signature_def['metadata']", "images_uint8", f"shape: (-1, {LATENT})"):
        assert text in shown.stdout, text

    ran = _saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def", "sample_seeded",
                           "--input_exprs", "num_samples=3;seed=0")
    assert ran.returncode == 0, ran.stderr[-1000:]
    assert "Result for output key images_uint8" in ran.stdout

    wrong = _saved_model_cli("run", "--dir", path, "--tag_set", "serve", "--signature_def", "serving_default",
                             "--input_exprs", f"z=[{[0.0] * (LATENT + 1)}]")
    assert wrong.returncode != 0
    assert f"which has shape (None, {LATENT})" in wrong.stderr


def test_warmup_requests_parse_and_run(exports):
    from tensorflow_serving.apis import prediction_log_pb2

    gan, path = exports["cgan"]
    signatures = tf.saved_model.load(path).signatures
    records = list(tf.data.TFRecordDataset(os.path.join(path, WARMUP_FILE)).as_numpy_iterator())
    assert 1 <= len(records) <= 1000
    seen = set()
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        assert request.model_spec.name == "cgan"
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        outputs = signatures[request.model_spec.signature_name](**inputs)
        assert outputs["images"].shape[1:] == (28, 28, 1)
        seen.add(request.model_spec.signature_name)
    assert seen == {"serving_default", "sample", "sample_seeded"}
    with open(os.path.join(path, METADATA_FILE)) as f:
        assert json.load(f)["latent_dim"] == LATENT


def test_rest_bodies_have_the_documented_shapes():
    z = np.arange(6, dtype=np.float32).reshape(2, 3)
    labels = np.array([4, 5], np.int32)
    assert client.rest_request_body({"z": z}, form="instances") == {
        "signature_name": "serving_default", "instances": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]}
    assert client.rest_request_body({"z": z, "labels": labels}, form="instances")["instances"] == [
        {"z": [0.0, 1.0, 2.0], "labels": 4}, {"z": [3.0, 4.0, 5.0], "labels": 5}]
    signature, inputs = client.sample_inputs(16, labels=[7], seed=3)
    assert signature == "sample_seeded"
    assert client.rest_request_body(inputs, signature) == {
        "signature_name": "sample_seeded", "inputs": {"num_samples": 16, "labels": [7], "seed": 3}}
    with pytest.raises(ValueError, match="form='inputs'"):
        client.rest_request_body(inputs, signature, form="instances")


def test_rest_responses_parse_in_both_forms():
    rows = {"predictions": [{"images": [0.5], "images_uint8": [128]}, {"images": [1.0], "images_uint8": [255]}]}
    parsed = client.parse_rest_response(rows)
    np.testing.assert_array_equal(parsed["images_uint8"], [[128], [255]])
    columns = client.parse_rest_response({"outputs": {"images": [[0.5], [1.0]]}})
    np.testing.assert_array_equal(columns["images"], [[0.5], [1.0]])
    with pytest.raises(client.ServingError, match="labels must be"):
        client.parse_rest_response({"error": "labels must be < num_classes=10"})


def test_grpc_request_carries_named_typed_tensors():
    request = client.grpc_predict_request("cgan", {"num_samples": np.int32(4), "labels": np.array([7], np.int32)}, "sample")
    assert request.model_spec.name == "cgan" and request.model_spec.signature_name == "sample"
    assert request.inputs["num_samples"].dtype == tf.int32.as_datatype_enum
    assert tf.make_ndarray(request.inputs["num_samples"]) == 4
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["labels"]), [7])


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_rest_client_against_a_stand_in_server(exports, form):
    gan, path = exports["cgan"]
    z = np.random.default_rng(1).normal(size=(3, LATENT)).astype(np.float32)
    labels = np.array([2, 4, 6], np.int32)
    with RestStandIn("cgan", path) as server:
        outputs = client.predict_rest(server.address, "cgan", {"z": z, "labels": labels}, form=form)
        np.testing.assert_allclose(outputs["images"], gan([z, labels]).numpy(), atol=1e-5)
        assert outputs["images_uint8"].dtype == np.uint8
        with pytest.raises(client.ServingError, match="labels must be < num_classes=10"):
            client.predict_rest(server.address, "cgan", {"z": z, "labels": labels + 5}, form=form)


def test_grpc_client_against_a_stand_in_server(exports):
    gan, path = exports["dcgan"]
    with GrpcStandIn("dcgan", path) as server:
        signature, inputs = client.sample_inputs(4, seed=9)
        outputs = client.predict_grpc(server.address, "dcgan", inputs, signature)
        np.testing.assert_allclose(outputs["images"], gan.generate(4, seed=9), atol=1e-5)
        with pytest.raises(client.ServingError, match="(?s)INVALID_ARGUMENT.*num_samples must be >= 0"):
            client.predict_grpc(server.address, "dcgan", {"num_samples": np.int32(-2), "seed": np.int64(0)}, signature)


def _run(script, *flags, cwd):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, script), *flags],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_generate_cli_locally_and_through_a_server(exports, tmp_path):
    gan, path = exports["cgan"]
    local = _run("generate.py", f"--model_path={path}", "--num_samples=6", "--labels=7", "--seed=1",
                 "--columns=3", "--output=local.png", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-2000:]
    grid = tf.io.decode_png(tf.io.read_file(str(tmp_path / "local.png"))).numpy()
    assert grid.shape[:2] == (2 * 28, 3 * 28)
    sevens = np.round((gan.generate(labels=[7] * 6, seed=1) + 1) / 2 * 255)
    np.testing.assert_allclose(grid[:28, :28, 0], sevens[0, :, :, 0], atol=1)

    with RestStandIn("cgan", path) as server:
        remote = _run("generate.py", f"--server={server.address}", "--model_name=cgan", "--protocol=rest",
                      "--num_samples=6", "--labels=7", "--seed=1", "--columns=3", "--output=remote.png", cwd=tmp_path)
    assert remote.returncode == 0, remote.stderr[-2000:]
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(str(tmp_path / "remote.png"))).numpy(), grid)

    bad = _run("generate.py", f"--model_path={path}", "--labels=12", "--output=x.png", cwd=tmp_path)
    assert bad.returncode == 2 and "labels must be < num_classes=10" in bad.stderr
    missing = _run("generate.py", f"--model_path={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert missing.returncode == 2 and "No model at" in missing.stderr


def test_export_cli_and_generate_from_a_keras_checkpoint(tmp_path):
    gan = MLPGAN(latent_dim=LATENT, hidden_units=16, seed=0)
    gan.compile()
    gan.save(str(tmp_path / "gan.keras"))
    exported = _run("export.py", f"--checkpoint={tmp_path / 'gan.keras'}", "--export_dir=models/mlp", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert os.path.exists(tmp_path / "models" / "mlp" / "1" / "saved_model.pb")
    from_keras = _run("generate.py", f"--model_path={tmp_path / 'gan.keras'}", "--num_samples=4", "--seed=0",
                      "--columns=2", "--output=k.png", cwd=tmp_path)
    from_export = _run("generate.py", "--model_path=models/mlp/1", "--num_samples=4", "--seed=0",
                       "--columns=2", "--output=s.png", cwd=tmp_path)
    from_base = _run("generate.py", "--model_path=models/mlp", "--num_samples=4", "--seed=0",
                     "--columns=2", "--output=b.png", cwd=tmp_path)  # TF Serving's base path: its newest version
    assert from_keras.returncode == 0 and from_export.returncode == 0, from_keras.stderr[-2000:] + from_export.stderr[-2000:]
    assert from_base.returncode == 0, from_base.stderr[-2000:]
    assert os.path.join("models", "mlp", "1") in from_base.stdout
    k = tf.io.decode_png(tf.io.read_file(str(tmp_path / "k.png"))).numpy().astype(int)
    s = tf.io.decode_png(tf.io.read_file(str(tmp_path / "s.png"))).numpy().astype(int)
    assert np.abs(k - s).max() <= 1
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(str(tmp_path / "b.png"))).numpy(), s)


def test_export_cli_exports_the_raw_generator_or_its_average(tmp_path):
    gan = MLPGAN(latent_dim=LATENT, hidden_units=16, seed=0, ema_decay=0.5)
    gan.compile()
    gan.generator.set_weights([w + 0.1 for w in gan.generator.get_weights()])  # G moved, its average not
    gan.save(str(tmp_path / "gan.keras"))
    checkpoint = f"--checkpoint={tmp_path / 'gan.keras'}"
    for export_dir, extra in (("average", ()), ("raw", ("--model_arg=sample_from_average=false",))):
        exported = _run("export.py", checkpoint, f"--export_dir={export_dir}", *extra, cwd=tmp_path)
        assert exported.returncode == 0, exported.stderr[-2000:]
    z = tf.constant(np.random.default_rng(0).normal(size=(3, LATENT)), tf.float32)
    for export_dir, network in (("average", gan.ema_generator), ("raw", gan.generator)):
        images = tf.saved_model.load(str(tmp_path / export_dir / "1")).signatures["serving_default"](z=z)["images"]
        np.testing.assert_allclose(images, network(z, training=False), atol=1e-5)
    assert not np.allclose(gan.generator(z), gan.ema_generator(z), atol=1e-3)

    refused = _run("export.py", checkpoint, "--export_dir=x", "--model_arg=ema_decay=none", cwd=tmp_path)
    assert refused.returncode == 2 and "would change MLPGAN's weights" in refused.stderr
    unknown = _run("export.py", checkpoint, "--export_dir=x", "--model_arg=colour=1", cwd=tmp_path)
    assert unknown.returncode == 2 and "MLPGAN has no argument 'colour'" in unknown.stderr
    assert not os.path.exists(tmp_path / "x")


def test_keras_checkpoints_load_in_safe_mode_with_a_pinned_keras():
    from packaging.version import Version

    assert Version(keras.__version__) >= Version("3.15.1")
    with open(os.path.join(REPO_ROOT, "requirements.txt")) as f:
        assert "keras>=3.15.1" in f.read()


def _malformed_requests(gan, rng):
    """`(signature, inputs, expected message or None)` with one defect each, for `gan`'s export."""
    latent, conditional = gan.latent_dim, gan.conditional
    rows = int(rng.integers(1, 5))
    good_z = rng.normal(size=(rows, latent)).astype(np.float32)
    good_labels = {"labels": tf.constant(rng.integers(0, 10, rows), tf.int32)} if conditional else {}
    one_label = {"labels": tf.constant([int(rng.integers(0, 10))], tf.int32)} if conditional else {}
    defects = []
    # serving_default: z of a wrong dtype, rank or latent size; non-finite; too many rows.
    dtype = [tf.float64, tf.int32, tf.string, tf.bool][int(rng.integers(4))]
    bad_z = tf.constant(good_z.astype(str)) if dtype == tf.string else tf.cast(good_z, dtype)
    defects.append(("serving_default", {"z": bad_z, **good_labels}, "expected to be a float"))
    rank = [0, 1, 3][int(rng.integers(3))]
    defects.append(("serving_default", {"z": tf.zeros([rows] * rank if rank else [], tf.float32), **good_labels}, None))
    other_size = int(rng.choice([k for k in range(1, 3 * latent) if k != latent]))
    defects.append(("serving_default", {"z": tf.zeros((rows, other_size)), **good_labels}, None))
    poisoned = good_z.copy()
    poisoned[int(rng.integers(rows)), int(rng.integers(latent))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
    defects.append(("serving_default", {"z": tf.constant(poisoned), **good_labels}, "z must be finite"))
    many = MAX_SAMPLES + int(rng.integers(1, 64))
    many_labels = {"labels": tf.zeros([many], tf.int32)} if conditional else {}
    defects.append(("serving_default", {"z": tf.zeros((many, latent)), **many_labels}, f"at most {MAX_SAMPLES} rows"))
    # sample / sample_seeded: num_samples out of range or of a wrong dtype or rank; a bad seed.
    signature = ["sample", "sample_seeded"][int(rng.integers(2))]
    seed = {"seed": tf.constant(int(rng.integers(0, 2**31)), tf.int64)} if signature == "sample_seeded" else {}
    count = int(rng.choice([-int(rng.integers(1, 10**6)), MAX_SAMPLES + int(rng.integers(1, 10**6))]))
    defects.append((signature, {"num_samples": tf.constant(count), **seed, **one_label}, "num_samples must be"))
    defects.append((signature, {"num_samples": tf.constant([rows]), **seed, **one_label}, None))
    defects.append((signature, {"num_samples": tf.constant(float(rows)), **seed, **one_label}, "expected to be a int32"))
    defects.append(("sample_seeded", {"num_samples": tf.constant(rows), "seed": tf.constant(1, tf.int32), **one_label},
                    "expected to be a int64"))
    # Inputs missing or unknown.
    defects.append(("serving_default", dict(good_labels), None))
    defects.append(("serving_default", {"z": tf.constant(good_z), "extra": tf.constant(1), **good_labels}, None))
    if conditional:  # labels out of range, of a wrong dtype, rank or length
        label = int(rng.choice([-int(rng.integers(1, 100)), 10 + int(rng.integers(0, 100))]))
        defects.append(("serving_default", {"z": tf.constant(good_z), "labels": tf.fill([rows], label)}, "labels must be"))
        defects.append((signature, {"num_samples": tf.constant(rows), **seed, "labels": tf.constant([label])}, "labels must be"))
        defects.append(("serving_default", {"z": tf.constant(good_z), "labels": tf.zeros([rows], tf.float32)}, "expected to be a int32"))
        defects.append(("serving_default", {"z": tf.constant(good_z), "labels": tf.zeros([rows, 1], tf.int32)}, None))
        defects.append(("serving_default", {"z": tf.constant(good_z), "labels": tf.zeros([rows + 1], tf.int32)}, "same batch size"))
        defects.append((signature, {"num_samples": tf.constant(rows + 2), **seed, "labels": tf.zeros([2], tf.int32)}, "1 label"))
    return defects


def test_a_few_hundred_malformed_requests_are_each_refused_with_an_invalid_argument(exports):
    """Every defect is refused (InvalidArgument, or a binding error for a missing or unknown
    input, which TF Serving reports as INVALID_ARGUMENT) and the model still serves after."""
    rng = np.random.default_rng(0)
    refused = 0
    for name, (gan, path) in exports.items():
        signatures = tf.saved_model.load(path).signatures
        for _ in range(10):
            for signature, inputs, expected in _malformed_requests(gan, rng):
                with pytest.raises((tf.errors.InvalidArgumentError, TypeError)) as error:
                    signatures[signature](**inputs)
                if expected is not None:
                    assert expected in str(error.value), (name, signature, str(error.value)[:300])
                refused += 1
        good = {"labels": tf.constant([3, 4])} if gan.conditional else {}
        assert signatures["serving_default"](z=tf.zeros((2, LATENT)), **good)["images"].shape[0] == 2
    assert refused >= 300


def test_sample_local_asks_an_export_in_requests_it_accepts(tmp_path):
    from gan_tf.serving.sampling import sample_local

    gan = CGAN(latent_dim=8, seed=0)
    path = export_generator(gan, str(tmp_path / "cgan"))
    signature = tf.saved_model.load(path).signatures["sample_seeded"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"num_samples must be <= {MAX_SAMPLES}"):
        signature(num_samples=tf.constant(MAX_SAMPLES + 3), seed=tf.constant(4, tf.int64), labels=tf.constant([0]))
    labels = np.arange(MAX_SAMPLES + 3) % 7
    images = sample_local(path, MAX_SAMPLES + 3, labels, seed=4)
    assert images.shape == (MAX_SAMPLES + 3, 28, 28, 1) and images.dtype == np.uint8
    # Request 0 is the signature's answer for seed 4, request 1 its answer for seed 5.
    np.testing.assert_array_equal(images[:MAX_SAMPLES], sample_local(path, MAX_SAMPLES, labels[:MAX_SAMPLES], seed=4))
    np.testing.assert_array_equal(images[MAX_SAMPLES:], sample_local(path, 3, labels[MAX_SAMPLES:], seed=5))
    assert sample_local(path, MAX_SAMPLES + 3, labels).shape[0] == MAX_SAMPLES + 3  # unseeded too
    assert sample_local(path, 0, [1]).shape == (0, 28, 28, 1)
