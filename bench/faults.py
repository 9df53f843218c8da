"""A fault campaign: kills, preemptions, damaged checkpoints, a full disk and concurrent starts
against `train.py`, each followed by the same command again, compared with a run that was never
interrupted.

    python bench/faults.py --models=dcgan,cgan --kills=6 --output=faults.json

Per model it first trains a reference run to the end (real data, `mnist_5k`), then, each in a
fresh workdir with the same flags:

* `SIGKILL, random moment`: killed at a uniformly random moment of the reference's wall time
  (start-up, a step, a checkpoint write, logging or the export, wherever it falls);
* `SIGKILL, checkpoint write`: killed while a checkpoint's temporary file exists;
* `SIGKILL, export`: killed while the SavedModel is being written;
* `SIGTERM`: sent up to 1 s after the first checkpoint (exit 75: saved at that step, stopped);
* `corrupt newest checkpoint`: killed up to 1 s after the second checkpoint, then the newest
  checkpoint cut to half its size before the rerun;
* `disk full`: the workdir is a tmpfs with room for about two checkpoints (needs root; skipped
  otherwise); once the run stops, the tmpfs grows and the same command runs again;
* `concurrent start`: two processes started together on one workdir.

then reruns the command until it exits 0 (at most 4 times), and reports how many runs ended
with every saved variable bit-identical to the reference (weights, optimizer moments and step
counts, weight averages, random streams, running means), the steps lost (train steps the final
model lacks) and the epochs logged more than once in `history.csv` and TensorBoard. Every run
uses `--deterministic` and `--checkpoint_every_steps`. A figure for the README, not a test.

The folder campaign (`--campaigns=folders`) reads real folders' oddities (`gan_tf.data.image_files`):

* `odd files`: the folder `tests/image_oddities.py` writes (eight EXIF orientations, CMYK, YCCK,
  16-bit, palette and alpha transparency, animations, a name that is not UTF-8, AppleDouble
  and hidden files, empty, truncated, dangling and FIFO files, a link loop), read in memory and
  streaming: files read with the pixels a viewer shows, files skipped, and `train.py` run on it;
* `files removed mid-run`: a streaming folder from which a quarter of the files are deleted and
  some replaced by garbage after a few batches: batches that came out full, files logged;
* `one huge photo`: the peak memory of a process streaming a folder of small JPEGs at 64 x 64,
  with and without one 12,000 x 9,000 JPEG among them (goal: within 1.2x).

The cluster campaign (`--campaigns=cluster`), per model: a 2-worker localhost cluster
(`--strategy=multi_worker`) trained to the end as the reference, then SIGTERM to the non-chief,
and to the chief, after the first step checkpoint; every worker must exit 75 at one common
checkpoint, and the cluster restarted with the same command must end bit-identical to the
reference (judged as the model campaign's rows).
"""

import glob
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from absl import app, flags  # noqa: E402

flags.DEFINE_list("campaigns", ["models", "folders", "cluster"], "models: kills, preemptions and damage against "
                  "train.py; folders: odd image files, files removed mid-run, one huge photo's memory; cluster: SIGTERM "
                  "to one worker of a 2-worker localhost cluster.")
flags.DEFINE_list("models", ["dcgan", "cgan"], "Models to run the campaign on.")
flags.DEFINE_integer("kills", 6, "SIGKILL runs at a random moment, per model.")
flags.DEFINE_integer("targeted", 2, "Runs per model of each targeted kind (checkpoint write, export, SIGTERM, corrupt).")
flags.DEFINE_integer("epochs", 3, "Epochs per run.")
flags.DEFINE_integer("steps_per_epoch", 12, "Train steps per epoch.")
flags.DEFINE_integer("checkpoint_every_steps", 4, "Step checkpoints every N steps.")
flags.DEFINE_integer("seed", 0, "Seed of the moments chosen (the runs themselves use --seed=0).")
flags.DEFINE_string("output", None, "Also write the results as JSON here.")
FLAGS = flags.FLAGS

TRAIN = os.path.join(REPO_ROOT, "train.py")


def train_flags(model, workdir):
    return [f"--model={model}", "--dataset=mnist_5k", f"--epochs={FLAGS.epochs}",
            f"--steps_per_epoch={FLAGS.steps_per_epoch}", "--batch_size=32", "--eval_every=0", "--deterministic",
            f"--checkpoint_every_steps={FLAGS.checkpoint_every_steps}", f"--workdir={workdir}",
            f"--export_dir={os.path.join(workdir, 'export')}"]


def start(model, workdir):
    log = open(os.path.join(os.path.dirname(workdir), os.path.basename(workdir) + f".{time.time_ns()}.log"), "w")
    return subprocess.Popen([sys.executable, TRAIN, *train_flags(model, workdir)], stdout=log, stderr=subprocess.STDOUT,
                            text=True), log.name


def run_to_end(model, workdir, attempts=4):
    """Reruns the command until it exits 0; returns the reruns' exit codes and their logs."""
    codes, logs = [], []
    for _ in range(attempts):
        process, log = start(model, workdir)
        codes.append(process.wait())
        logs.append(open(log).read())
        if codes[-1] == 0:
            break
    return codes, logs


def weights_of(checkpoint):
    """`{dataset path: bytes}` of every variable a `.keras` checkpoint saved."""
    import h5py
    import numpy as np

    values = {}
    with zipfile.ZipFile(checkpoint) as archive, tempfile.TemporaryDirectory() as scratch:
        archive.extract("model.weights.h5", scratch)
        with h5py.File(os.path.join(scratch, "model.weights.h5")) as weights:
            weights.visititems(lambda name, item: values.__setitem__(name, np.asarray(item).tobytes())
                               if isinstance(item, h5py.Dataset) else None)
    return values


def final_checkpoint(workdir):
    from gan_tf.training.callbacks import latest_checkpoint

    latest = latest_checkpoint(os.path.join(workdir, "checkpoints"))
    return latest[1] if latest and latest[0] == (FLAGS.epochs, 0) else None


def logged_epochs(workdir):
    """`(epochs in history.csv, epochs of TensorBoard's epoch_d_loss)`, one entry per record."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    rows = []
    csv_path = os.path.join(workdir, "history.csv")
    if os.path.exists(csv_path):
        rows = [int(line.split(",")[0]) for line in open(csv_path).read().splitlines()[1:] if line]
    steps = []
    for path in glob.glob(os.path.join(workdir, "logs", "train", "*tfevents*")):
        try:
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                event = event_pb2.Event.FromString(record)
                steps += [event.step for value in event.summary.value if value.tag == "epoch_d_loss"]
        except tf.errors.DataLossError:
            pass
    return sorted(rows), sorted(steps)


def steps_done(checkpoint):
    import keras

    model = keras.saving.load_model(checkpoint)
    return int(keras.ops.convert_to_numpy(model.g_optimizer.iterations))


def judge(kind, model, workdir, reference, codes, first_exit, notes=""):
    checkpoint = final_checkpoint(workdir)
    identical = checkpoint is not None and weights_of(checkpoint) == reference["weights"]
    expected_steps = FLAGS.epochs * FLAGS.steps_per_epoch
    lost = expected_steps - (steps_done(checkpoint) if checkpoint else 0)
    rows, steps = logged_epochs(workdir)
    repeated = (len(rows) - len(set(rows))) + (len(steps) - len(set(steps)))
    missing = len(set(range(FLAGS.epochs)) - set(rows)) + len(set(range(FLAGS.epochs)) - set(steps))
    versions = sorted(name for name in os.listdir(os.path.join(workdir, "export")) if name.isdigit()) \
        if os.path.isdir(os.path.join(workdir, "export")) else []
    return {"kind": kind, "model": model, "first_exit": first_exit, "reruns": codes, "bit_identical": identical,
            "steps_lost": lost, "epochs_logged_twice": repeated, "epochs_not_logged": missing,
            "exported": bool(versions), "notes": notes}


def wait_for(predicate, process, timeout=300, poll=0.003):
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def temporary_checkpoint(workdir):
    return bool(glob.glob(os.path.join(workdir, "checkpoints", ".tmp-*")))


def exporting(workdir):
    return bool(glob.glob(os.path.join(workdir, "export", ".tmp-export-*")))


def campaign(model, root, rng):
    results = []
    reference_dir = os.path.join(root, f"{model}-reference")
    began = time.time()
    codes, logs = run_to_end(model, reference_dir, attempts=1)
    wall = time.time() - began
    if codes != [0]:
        raise SystemExit(f"the reference run of {model} failed:\n{logs[-1][-3000:]}")
    reference = {"weights": weights_of(final_checkpoint(reference_dir))}
    print(f"{model}: reference run {wall:.1f} s, {len(reference['weights'])} saved arrays", flush=True)

    def fresh(name):
        workdir = os.path.join(root, f"{model}-{name}")
        shutil.rmtree(workdir, ignore_errors=True)
        return workdir

    def kill_then_rerun(kind, index, trigger, sig=signal.SIGKILL, before_rerun=None):
        workdir = fresh(f"{kind.replace(' ', '_').replace(',', '')}-{index}")
        process, _ = start(model, workdir)
        notes = trigger(process, workdir)
        if process.poll() is None:
            process.send_signal(sig)
        first_exit = process.wait()
        if before_rerun:
            notes = (notes + "; " if notes else "") + before_rerun(workdir)
        codes, _ = run_to_end(model, workdir)
        results.append(judge(kind, model, workdir, reference, codes, first_exit, notes))
        print("  ", json.dumps(results[-1]), flush=True)

    def at_random_moment(process, workdir):
        moment = rng.uniform(0.05, 0.95) * wall
        time.sleep(moment)
        return f"at {moment:.1f} s"

    def at_checkpoint_write(process, workdir):
        target = rng.randint(1, 4)  # the 1st to 4th write it sees
        for seen in range(1, target + 1):
            if not wait_for(lambda: temporary_checkpoint(workdir), process):
                return "no write caught"
            if seen < target:
                wait_for(lambda: not temporary_checkpoint(workdir), process)
        return f"write {target}"

    def write_interrupted(workdir):
        return "temporary file left (killed mid-write)" if temporary_checkpoint(workdir) else "write had finished"

    def during_training(process, workdir, checkpoints=1):
        from gan_tf.training.callbacks import list_checkpoints

        wait_for(lambda: len(list_checkpoints(os.path.join(workdir, "checkpoints"))) >= checkpoints, process)
        delay = rng.uniform(0.0, 1.0)
        time.sleep(delay)
        return f"{delay:.2f} s after checkpoint {checkpoints}"

    def at_export(process, workdir):
        caught = wait_for(lambda: exporting(workdir), process)
        time.sleep(rng.uniform(0.0, 0.5))
        return "mid-export" if caught and exporting(workdir) else "export not caught"

    def cut_newest(workdir):
        from gan_tf.training.callbacks import latest_checkpoint

        latest = latest_checkpoint(os.path.join(workdir, "checkpoints"))
        if latest is None:
            return "no checkpoint to damage"
        with open(latest[1], "r+b") as f:
            f.truncate(os.path.getsize(latest[1]) // 2)
        return f"cut {os.path.basename(latest[1])}"

    for index in range(FLAGS.kills):
        kill_then_rerun("SIGKILL, random moment", index, at_random_moment)
    for index in range(FLAGS.targeted):
        kill_then_rerun("SIGKILL, checkpoint write", index, at_checkpoint_write, before_rerun=write_interrupted)
        kill_then_rerun("SIGKILL, export", index, at_export)
        kill_then_rerun("SIGTERM", index, during_training, sig=signal.SIGTERM)
        kill_then_rerun("corrupt newest checkpoint", index, lambda p, w: during_training(p, w, checkpoints=2),
                        before_rerun=cut_newest)
    results.append(disk_full(model, fresh("disk_full"), reference))
    print("  ", json.dumps(results[-1]), flush=True)
    results.append(concurrent_start(model, fresh("concurrent"), reference))
    print("  ", json.dumps(results[-1]), flush=True)
    return results


def disk_full(model, workdir, reference):
    os.makedirs(workdir)
    checkpoint_bytes = os.path.getsize(final_checkpoint(os.path.join(os.path.dirname(workdir), f"{model}-reference")))
    size = int(2.5 * checkpoint_bytes) + (4 << 20)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", workdir], capture_output=True).returncode:
        return {"kind": "disk full", "model": model, "notes": "skipped: cannot mount a tmpfs (needs root)"}
    try:
        process, log = start(model, workdir)
        first_exit = process.wait()
        message = [line for line in open(log).read().splitlines() if line.startswith("train.py: error:")]
        subprocess.run(["mount", "-o", f"remount,size={size * 20}", workdir], check=True)
        codes, _ = run_to_end(model, workdir)
        result = judge("disk full", model, workdir, reference, codes, first_exit,
                       notes=(message[0][:160] if message else "no error line") + (
                           "; traceback printed" if "Traceback" in open(log).read() else ""))
    finally:
        subprocess.run(["umount", workdir], capture_output=True)
    return result


def concurrent_start(model, workdir, reference):
    first, first_log = start(model, workdir)
    second, second_log = start(model, workdir)
    exits = [first.wait(), second.wait()]
    refused = [log for log, code in zip((first_log, second_log), exits) if code == 1 and "is in use by process"
               in open(log).read()]
    result = judge("concurrent start", model, workdir, reference, [], exits,
                   notes=f"{len(refused)} of 2 refused as 'in use'")
    return result


# ---------------------------------------------------------------------- the cluster campaign

def start_cluster(model, workdir, workers=2):
    """The processes of a localhost cluster running the same train.py command (worker 0 is the chief)."""
    import socket

    sockets = [socket.socket() for _ in range(workers)]
    for bound in sockets:
        bound.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"localhost:{bound.getsockname()[1]}" for bound in sockets]}
    for bound in sockets:
        bound.close()
    processes = []
    for index in range(workers):
        scratch = tempfile.mkdtemp(prefix=f"worker{index}-tmp-", dir=os.path.dirname(workdir))
        env = {**os.environ, "TMPDIR": scratch,
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        log = open(f"{workdir}.worker{index}.{time.time_ns()}.log", "w")
        processes.append(subprocess.Popen([sys.executable, TRAIN, *train_flags(model, workdir), "--strategy=multi_worker"],
                                          stdout=log, stderr=subprocess.STDOUT, env=env))
    return processes


def cluster_to_end(model, workdir, attempts=3):
    """Restarts the cluster until every worker exits 0; returns each start's exit codes."""
    codes = []
    for _ in range(attempts):
        codes.append([process.wait() for process in start_cluster(model, workdir)])
        if not any(codes[-1]):
            break
    return codes


def cluster_campaign(model, root):
    from gan_tf.training.callbacks import latest_checkpoint

    reference_dir = os.path.join(root, f"{model}-cluster-reference")
    os.makedirs(root, exist_ok=True)
    print(f"{model}: reference cluster", flush=True)
    cluster_to_end(model, reference_dir)
    reference = {"weights": weights_of(final_checkpoint(reference_dir))}
    results = []
    for target, name in ((1, "the non-chief"), (0, "the chief")):
        workdir = os.path.join(root, f"{model}-cluster-sigterm-worker{target}")
        processes = start_cluster(model, workdir)
        checkpoints = os.path.join(workdir, "checkpoints")
        wait_for(lambda: latest_checkpoint(checkpoints) is not None, processes[0])
        processes[target].send_signal(signal.SIGTERM)
        first_exits = [process.wait() for process in processes]
        stopped_at = latest_checkpoint(checkpoints)
        codes = cluster_to_end(model, workdir)
        results.append(judge(f"SIGTERM to {name} of a 2-worker cluster", model, workdir, reference, codes,
                             "/".join(map(str, first_exits)), notes=f"common checkpoint {stopped_at[1] if stopped_at else None}"))
        print(f"{model}: {results[-1]['kind']}: first exits {results[-1]['first_exit']}, reruns {codes}, "
              f"bit-identical {results[-1]['bit_identical']}", flush=True)
    return results


# ----------------------------------------------------------------------- the folder campaign

def folder_campaign(root):
    """Prints the three folder rows (module docstring)."""
    import numpy as np

    sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
    from image_oddities import write_oddities

    from gan_tf.data import open_source

    rows = []
    odd = os.path.join(root, "odd", "photos")
    readable, skipped = write_oddities(odd)
    counter = _WarningCounter()
    logging.getLogger("gan_tf").addHandler(counter)
    for in_memory in (True, False):
        counter.records.clear()
        source = open_source(f"folder:{odd}", image_size=16, in_memory=in_memory)
        images = source.arrays()[0]
        matched = sum(min(np.abs(image.astype(int) - _fitted(expected).astype(int)).max() for image in images) <= 4
                      for expected in readable.values())
        rows.append((f"odd files, {'in memory' if in_memory else 'streaming'}",
                     f"{len(readable) + len(skipped)} written: {len(images)} read ({len(readable)} readable; "
                     f"{matched} with a viewer's pixels); warnings: {counter.skips()}"))
    workdir = os.path.join(root, "odd_run")  # outside the data: its lock file would count as hidden
    process = subprocess.run([sys.executable, TRAIN, f"--dataset=folder:{os.path.dirname(odd)}", "--image_size=16",
                              "--epochs=1", "--batch_size=8", f"--workdir={workdir}",
                              f"--export_dir={os.path.join(root, 'odd_export')}", "--eval_every=0"],
                             capture_output=True, text=True, errors="backslashreplace")
    data_line = next((line for line in process.stdout.splitlines() if line.startswith("Data:")), "")
    rows.append(("odd files, train.py", f"exit {process.returncode}; {data_line[:200]}"))

    streaming = os.path.join(root, "vanishing")
    os.makedirs(streaming)
    from PIL import Image

    for index in range(64):
        Image.new("L", (8, 8), index).save(os.path.join(streaming, f"{index:02d}.png"))
    source = open_source(f"folder:{streaming}", in_memory=False)
    counter.records.clear()
    batches, full = 0, 0
    for images, unused_labels in source.dataset(batch_size=8, seed=0, repeat=True).take(40):
        batches += 1
        full += images.shape[0] == 8
        if batches == 4:
            for index in range(0, 64, 4):
                os.remove(os.path.join(streaming, f"{index:02d}.png"))
            for index in range(1, 17, 4):
                with open(os.path.join(streaming, f"{index:02d}.png"), "wb") as handle:
                    handle.write(b"overwritten")
    logged = sum("while reading the data" in record for record in counter.records)
    rows.append(("files removed mid-run", f"16 deleted and 4 overwritten after batch 4: {full} of {batches} batches "
                                          f"full, {logged} files logged as skipped"))

    rows.append(("one huge photo", _huge_photo_memory(os.path.join(root, "huge"))))
    logging.getLogger("gan_tf").removeHandler(counter)
    print("\n| folder fault | result |\n| --- | --- |")
    for kind, result in rows:
        print(f"| {kind} | {result} |")
    return rows


class _WarningCounter(logging.Handler):
    """Keeps the text of every warning gan_tf logs."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())

    def skips(self):
        """"skipped N kind" of each warning, without the names."""
        return "; ".join(re.search(r"skipped \d+ [^:]+", text).group(0) for text in self.records if "skipped" in text)


def _fitted(expected):
    return expected if expected.shape[:2] == (16, 16) else expected[8:24]


def _huge_photo_memory(root):
    """Peak memory (MB) of a process streaming small JPEGs at 64 x 64, without and with one
    12,000 x 9,000 JPEG among them."""
    import numpy as np
    from PIL import Image

    small = os.path.join(root, "small")
    os.makedirs(small)
    rng = np.random.default_rng(0)
    for index in range(200):
        photo = (rng.random((1, 1, 3)) * 255 * np.ones((480, 640, 3))).astype(np.uint8)
        Image.fromarray(photo).save(os.path.join(small, f"{index:03d}.jpg"), quality=90)
    with_huge = os.path.join(root, "with_huge")
    shutil.copytree(small, with_huge)
    huge = np.empty((9000, 12000, 3), np.uint8)  # stripes and a diagonal: a photo-sized JPEG of a few MB
    huge[..., 0] = (np.arange(9000) // 35 % 256).astype(np.uint8)[:, None]
    huge[..., 1] = (np.arange(12000) // 47 % 256).astype(np.uint8)[None, :]
    huge[..., 2] = huge[..., 0] // 2 + huge[..., 1] // 2
    Image.fromarray(huge).save(os.path.join(with_huge, "huge.jpg"), quality=90)
    del huge
    # VmHWM, the process's own peak (ru_maxrss would carry over this process's peak through exec).
    reader = ("import re, sys; from gan_tf.data import open_source; "
              "source = open_source('folder:' + sys.argv[1], image_size=64, in_memory=False); "
              "[None for batch in source.dataset(batch_size=20, seed=0, repeat=True).take(25)]; "
              "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)")
    peaks = {}
    for name, folder in (("without", small), ("with", with_huge)):
        process = subprocess.run([sys.executable, "-c", reader, folder], capture_output=True, text=True, cwd=REPO_ROOT)
        if process.returncode:
            return f"the reader failed: {process.stderr.strip().splitlines()[-1]}"
        peaks[name] = float(process.stdout.split()[-1])
    return (f"peak memory {peaks['without']:.0f} MB without, {peaks['with']:.0f} MB with one 12,000 x 9,000 JPEG "
            f"among 200 photos of 640 x 480 (ratio {peaks['with'] / peaks['without']:.2f}; goal <= 1.2)")


def main(argv):
    rng = random.Random(FLAGS.seed)
    root = tempfile.mkdtemp(prefix="gan_tf-faults-")
    print(f"Workdirs and logs under {root}", flush=True)
    if "folders" in FLAGS.campaigns:
        folder_campaign(os.path.join(root, "folders"))
    results = []
    for model in FLAGS.models if "models" in FLAGS.campaigns else ():
        results += campaign(model, root, rng)
    for model in FLAGS.models if "cluster" in FLAGS.campaigns else ():
        results += cluster_campaign(model, root)

    print("\n| model | fault | runs | bit-identical | steps lost | epochs logged twice | epochs not logged | first exit codes |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    kinds = []
    for result in results:
        if (result["model"], result["kind"]) not in kinds:
            kinds.append((result["model"], result["kind"]))
    for model, kind in kinds:
        rows = [r for r in results if r["model"] == model and r["kind"] == kind and "bit_identical" in r]
        if not rows:
            print(f"| {model} | {kind} | 0 | skipped | | | | |")
            continue
        firsts = ", ".join(str(r["first_exit"]) for r in rows)
        print(f"| {model} | {kind} | {len(rows)} | {sum(r['bit_identical'] for r in rows)} | "
              f"{sum(r['steps_lost'] for r in rows)} | {sum(r['epochs_logged_twice'] for r in rows)} | "
              f"{sum(r['epochs_not_logged'] for r in rows)} | {firsts} |")
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(results, f, indent=1)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
