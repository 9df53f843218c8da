"""tf.distribute for training: making strategies, and chief-only outputs.

* `make_strategy("default" | "mirrored" | "multi_worker", cpu_devices=N)`: `mirrored` uses every
  visible GPU (or the devices given); on a machine without GPUs `cpu_devices=N` splits the CPU
  into N logical devices so that distribution can be tried anywhere. `multi_worker` reads the
  cluster from `TF_CONFIG`.
* `is_chief(strategy)`: only the chief writes checkpoints, logs, sample grids and exports;
  `output_dir(path, strategy)` gives the other workers a temporary directory instead.
* `any_worker(strategy)`: a function that tells every worker whether any worker raised a flag,
  so that a cluster takes decisions a single worker sees (a preemption signal, a save due by
  its clock) together, at the same step.

The Keras 3.15 multi-worker workarounds that the models need are in
`gan_tf.models.multi_worker`.
"""

import contextlib
import functools
import os
import shutil
import tempfile

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def split_cpu(num_devices):
    """Splits the first physical CPU into `num_devices` logical devices.

    Must run before TensorFlow initialises its devices (before any op runs); a second call with
    the same number is a no-op.

    Raises:
        RuntimeError: when TensorFlow's devices are already initialised with another split.
    """
    if num_devices < 1:
        raise ValueError(f"cpu_devices must be at least 1. Received: {num_devices}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError:
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} devices: TensorFlow has already initialised "
            "its devices. Call make_strategy / split_cpu before running any TensorFlow op."
        ) from None


def make_strategy(name="default", cpu_devices=None, devices=None):
    """Returns the `tf.distribute.Strategy` named `name`.

    Args:
        name: "default" (one device, no distribution), "mirrored" (synchronous data parallelism
            over the devices of this machine) or "multi_worker" (over the machines in
            `TF_CONFIG`).
        cpu_devices: with "mirrored" and no GPU, replicate over this many logical CPU devices.
        devices: with "mirrored", the device names to use (default: every GPU).

    Example:
        >>> strategy = make_strategy("mirrored", cpu_devices=2)
        >>> with strategy.scope():
        ...     gan = DCGAN(); gan.compile()
        >>> gan.fit(dataset)  # dataset batches are global batches
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}. Choose one of: {', '.join(STRATEGIES)}.")
    if name == "default":
        if cpu_devices not in (None, 1):
            raise ValueError("cpu_devices needs strategy='mirrored'.")
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy='multi_worker' reads the cluster from the TF_CONFIG environment variable, "
                "which is not set (see the README's 'Several GPUs and machines')."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices:
        return _mirrored(tuple(devices))
    if cpu_devices:
        split_cpu(cpu_devices)
        if not tf.config.list_logical_devices("GPU"):
            return _mirrored(tuple(f"/cpu:{i}" for i in range(cpu_devices)))
    return _mirrored(None)


@functools.lru_cache(maxsize=None)
def _mirrored(devices):
    """One `MirroredStrategy` per device set and process.

    Two strategies over the same devices number their collective ops alike, and their all-reduces
    then cross ("Shape mismatch in the collective instance"): reuse one.
    """
    return tf.distribute.MirroredStrategy(list(devices) if devices else None)


def is_chief(strategy):
    """Whether this process is the one that writes outputs (always true outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return True
    cluster = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, resolver.task_id
    if not cluster or task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def any_worker(strategy):
    """`flags -> flags`: for each flag (a list of bools), whether it is set on any worker.

    Under `MultiWorkerMirroredStrategy` it is one small all-reduce (a sum) over the cluster, so
    every worker must call it at the same points of training, in the same order (as it does
    its train steps); elsewhere it returns the flags as they are. A SIGTERM reaches one
    worker; with this, every worker stops at the same step and saves one common checkpoint
    (`gan_tf.training.callbacks.RunCheckpoint`), where a worker stopping alone would leave its
    peers waiting in the next step's collective until they fail.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return lambda flags: [bool(flag) for flag in flags]

    device = strategy.extended.worker_devices[0]

    @tf.function
    def count_over_workers(values):
        def replica_fn():
            with tf.device(device):  # a value placed nowhere has no device to reduce to
                value = tf.identity(values)
            return tf.distribute.get_replica_context().all_reduce("SUM", value)

        return strategy.experimental_local_results(strategy.run(replica_fn))[0]

    def agree(flags):
        return [bool(count > 0) for count in count_over_workers(tf.constant([float(bool(f)) for f in flags])).numpy()]

    return agree


@contextlib.contextmanager
def output_dir(path, strategy):
    """Yields `path` on the chief, and a temporary directory (removed afterwards) elsewhere.

    Every worker must run the same callbacks (their saves can involve collective ops), but only
    the chief's files are kept.
    """
    if is_chief(strategy):
        yield path
        return
    temporary = tempfile.mkdtemp(prefix="gan_tf-worker-")
    try:
        yield os.path.join(temporary, os.path.basename(os.path.normpath(path)) or "out")
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
