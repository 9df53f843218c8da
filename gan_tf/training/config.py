"""`TrainConfig`: everything one training run needs, checked before anything is loaded."""

import dataclasses
import os

from gan_tf.data.image_files import DEFAULT_MAX_PIXELS
from gan_tf.data.source import CROPS, parse_image_size
from gan_tf.data.specs import check_spec
from gan_tf.models import MODELS, get_model_class
from gan_tf.models.generative import check_model_args
from gan_tf.training.distribute import STRATEGIES


# --mixed_precision choices: "off" (float32) or a Keras mixed dtype policy.
MIXED_PRECISION = ("off", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig:
    """Everything one training run needs; `train.py` fills it from its flags.

    `dataset` is a built-in name, `folder:PATH` or `tfds:NAME[:SPLIT]`, read at `image_size`
    (None: native; S or "HxW") with `channels` (None: the data's, 1 or 3) and `crop` ("center"
    or "none"), see `gan_tf.data.source`; `cache_dir` caches decoded images of data that stream;
    image files whose decoded pixels would exceed `max_image_pixels` are skipped
    (`gan_tf.data.image_files`).

    `model` defaults to the self-conditioned GAN: DCGAN's networks and settings, conditioned on
    k-means clusters of the training images, which at the quickstart's budget took FID from
    DCGAN's 54.9 to 25.0-28.3 at about DCGAN's time per step (docs/results/gans.md, "The
    quickstart").

    `model_args` are constructor arguments of the model (`{"gp_weight": 5}`): checked against
    its constructor before anything is loaded, and validated by the constructor itself.
    `latent_dim` is the one model setting with a field of its own (None: the model's).

    `None` means "the default": batch size from the model's `default_batch_size`, train steps
    per `tf.function` call from its `default_steps_per_execution` (or the largest number below
    it that divides `steps_per_epoch`: Keras runs whole calls; 1 under tf.distribute, where
    Keras 3.15 cannot run several), learning rates from its
    `default_optimizers()`, `workdir` `runs/<model>`, `export_dir` `saved_models/<model>`.

    Checkpoints (`gan_tf.training.callbacks.RunCheckpoint`): after every epoch, every
    `checkpoint_every_steps` train steps (None: not by count) and after every
    `checkpoint_every_seconds` seconds of training (None: not by time); a resumed run continues
    at the step of the newest one. `deterministic` turns on TensorFlow's op determinism, with
    which a resumed run ends with bit-identical weights to one never interrupted.

    Speed levers (bench/throughput.py measures them): `steps_per_execution` (several train
    steps per call: same results, less per-step overhead), `jit_compile` (XLA; slower on CPU,
    off by default), `mixed_precision` ("mixed_float16" with loss scaling, for GPUs;
    "mixed_bfloat16"; "off": float32; both mixed policies are slower on CPU).
    """

    model: str = "self_conditioned_gan"
    dataset: str = "mnist_5k"
    data_dir: str = None
    image_size: str = None
    channels: int = None
    crop: str = "center"
    cache_dir: str = None
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    epochs: int = 20
    steps_per_epoch: int = None
    batch_size: int = None
    latent_dim: int = None
    model_args: dict = dataclasses.field(default_factory=dict)
    d_learning_rate: float = None
    g_learning_rate: float = None
    seed: int = 0
    eval_every: int = 5
    eval_samples: int = 1000
    max_examples: int = None
    inception_weights: str = None
    workdir: str = None
    export_dir: str = None
    strategy: str = "default"
    cpu_devices: int = None
    resume: bool = True
    steps_per_execution: int = None
    jit_compile: bool = False
    mixed_precision: str = "off"
    checkpoint_every_steps: int = None
    checkpoint_every_seconds: float = 300.0
    deterministic: bool = False
    verbose: str = "auto"

    def validate(self):
        """Raises `ValueError` with a one-line message for the first invalid field."""
        if self.model not in MODELS:
            raise ValueError(f"Unknown model {self.model!r}. Choose one of: {', '.join(MODELS)}.")
        check_spec(self.dataset)
        parse_image_size(self.image_size)
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3. Received: {self.channels}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}. Received: {self.crop!r}")
        _at_least(1, epochs=self.epochs, max_image_pixels=self.max_image_pixels)
        if self.latent_dim is not None:
            _at_least(1, latent_dim=self.latent_dim)
        check_model_args(self.model, get_model_class(self.model), self.all_model_args())
        if self.batch_size is not None:
            _at_least(1, batch_size=self.batch_size)
        if self.steps_per_epoch is not None:
            _at_least(1, steps_per_epoch=self.steps_per_epoch)
        _at_least(0, eval_every=self.eval_every)
        _at_least(4, eval_samples=self.eval_samples)
        if self.max_examples is not None:
            _at_least(1, max_examples=self.max_examples)
        for name in ("d_learning_rate", "g_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive. Received: {value}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown strategy {self.strategy!r}. Choose one of: {', '.join(STRATEGIES)}.")
        if self.steps_per_execution is not None:
            _at_least(1, steps_per_execution=self.steps_per_execution)
            if self.steps_per_epoch is not None and self.steps_per_epoch % self.steps_per_execution:
                # Keras runs whole executions: the epoch would silently grow to a multiple.
                raise ValueError(
                    f"steps_per_epoch ({self.steps_per_epoch}) must be a multiple of "
                    f"steps_per_execution ({self.steps_per_execution})."
                )
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"Unknown mixed_precision {self.mixed_precision!r}. Choose one of: {', '.join(MIXED_PRECISION)}."
            )
        if self.steps_per_execution not in (None, 1) and self.strategy != "default":
            # Keras 3.15's multi-step loop fails under tf.distribute with a GAN's train_step
            # ("You must feed a value for placeholder tensor ... while/cond/Placeholder").
            raise ValueError(
                f"steps_per_execution={self.steps_per_execution} works only with strategy='default' "
                f"(Keras 3.15 fails on it under strategy={self.strategy!r}); leave it unset."
            )
        if self.checkpoint_every_steps is not None:
            _at_least(1, checkpoint_every_steps=self.checkpoint_every_steps)
        if self.checkpoint_every_seconds is not None and not self.checkpoint_every_seconds > 0:
            raise ValueError(f"checkpoint_every_seconds must be positive. Received: {self.checkpoint_every_seconds}")
        if self.cpu_devices is not None:
            _at_least(1, cpu_devices=self.cpu_devices)
            if self.strategy != "mirrored":
                raise ValueError("cpu_devices needs strategy='mirrored'.")

    def all_model_args(self):
        """`model_args` with `latent_dim` (when set) and `seed`: what the constructor gets."""
        arguments = dict(self.model_args or {})
        if self.latent_dim is not None:
            arguments["latent_dim"] = self.latent_dim
        return arguments

    def resolved(self):
        """A copy with the model's defaults filled in for every `None` that has one."""
        model_class = get_model_class(self.model)
        steps_per_execution = self.steps_per_execution
        if steps_per_execution is None:
            # One step per call under tf.distribute: see `validate`.
            steps_per_execution = model_class.default_steps_per_execution if self.strategy == "default" else 1
            if self.steps_per_epoch is not None:  # the largest that divides the epoch
                steps_per_execution = max(
                    d for d in range(1, steps_per_execution + 1) if self.steps_per_epoch % d == 0
                )
        return dataclasses.replace(
            self,
            batch_size=self.batch_size or model_class.default_batch_size,
            steps_per_execution=steps_per_execution,
            workdir=self.workdir or os.path.join("runs", self.model),
            export_dir=self.export_dir or os.path.join("saved_models", self.model),
        )


def _at_least(minimum, **values):
    for name, value in values.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}. Received: {value}")
