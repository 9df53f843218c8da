"""`GenerativeModel`: the one contract between a trainable model and the pipeline around it.

The trainer, the callbacks (sample grids, checkpoints, TensorBoard), evaluation, sampling,
export and the benches call only what is declared here. None of them asks what kind of model it
has (conditional or not, with a discriminator or not, noise in or images in): a new model
family plugs in by implementing these methods, with no edit to the pipeline. `docs/
architecture.md` draws how the pieces meet.

A model implements:

* `from_data(info, **model_args)` (classmethod): the model sized for a dataset
  (`DatasetInfo`: image shape, classes). The default passes `image_shape`, and `num_classes`
  when the model takes it; it refuses unlabelled data for a model that needs labels, and data
  of another `modality` (images vs melodies).
* `plan_training(total_steps)`: the run's length, before the optimizers are made (no-op by default).
* `default_optimizers()`: `{role: optimizer}` (a GAN: "discriminator", "generator").
* `compile_optimizers(optimizers, **compile_kwargs)`: compiles with optimizers by role;
  `optimizer_roles()`: the compiled model's `{role: optimizer}`.
* `sample(num_samples, seed=None, conditions=None, **options)`: a `Samples` of images in
  `value_range` plus the conditions they were drawn for (None when unconditional). With
  `conditions=None` a conditional model spreads them evenly (classes 0, 1, 2, ... in turn).
* `preview(rows, columns, seed)`: the `rows * columns` images of the preview grid, row-major
  (a class-conditional model draws class k in row k).
* `export_metadata()`: what a client needs to know (JSON-able); `export_archive(metadata)`:
  a `keras.export.ExportArchive` with the model's signatures; `warmup_requests()`:
  `[(signature_name, inputs)]` TF Serving runs on load.
* `train_step_flops_per_image()`: FLOPs of one train step per training image (benches).
* `preview_audio(seed)`: `(float audio [samples] in [-1, 1], sample rate)` of a preview that can
  be heard (a melody model's song), or None (the default).
* `log_likelihood(images, conditions, seed)`: per-image log-likelihoods (or bounds) and bits
  per dimension, or None (the default: GANs define none). An export that has one serves it as
  its `log_likelihood` signature.

Every model also saves, with its weights, what Keras leaves out of a `.keras` file: the state of
each random stream it or its layers draw from (noise, dropout masks, interpolation weights) and
its metric trackers' running sums, so that a run resumed from a checkpoint taken in the middle
of an epoch continues exactly (`gan_tf.training.callbacks.RunCheckpoint`).

And declares, as class attributes: `value_range`, `default_batch_size`,
`default_steps_per_execution`, and `needs_labels` (trains on `(images, labels)` batches).
"""

import collections
import inspect

import keras
import numpy as np
import tensorflow as tf

# Constructor arguments that come from the data or the run, never from `--model_arg`.
DATA_ARGUMENTS = ("image_shape", "source_shape", "num_classes", "seed", "name", "generator", "discriminator",
                  "feature_network", "vocabulary")

Samples = collections.namedtuple("Samples", ["images", "conditions"])
Samples.__doc__ = """Generated images (numpy, in the model's `value_range`) and the conditions
they were drawn for: None, or a dict such as `{"labels": int array [N]}`."""


def constructor_arguments(model_class):
    """`{name: default}` of every argument `model_class(...)` accepts, base classes' included
    (followed through `**kwargs` up to `keras.Model`), without the data arguments and those the
    class sets itself (`fixed_arguments`, e.g. a critic's `real_label`)."""
    arguments = {}
    for klass in model_class.__mro__:
        if klass is keras.Model or not issubclass(klass, keras.Model) or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters
        for name, parameter in parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            arguments.setdefault(name, None if parameter.default is parameter.empty else parameter.default)
        if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            break
    fixed = set(getattr(model_class, "fixed_arguments", ()))
    return {name: default for name, default in arguments.items() if name not in DATA_ARGUMENTS and name not in fixed}


def parse_value(text):
    """A `--model_arg` value: int, float, bool (`true`/`false`), None (`none`) or the string."""
    if not isinstance(text, str):
        return text
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_model_args(items):
    """`{name: value}` from `["NAME=VALUE", ...]` (values parsed by `parse_value`)."""
    parsed = {}
    for item in items or ():
        name, separator, value = str(item).partition("=")
        name = name.strip()
        if not separator or not name:
            raise ValueError(f"--model_arg takes NAME=VALUE. Received: {item!r}")
        parsed[name] = parse_value(value)
    return parsed


def check_model_args(model_name, model_class, model_args):
    """Raises `ValueError` naming an argument `model_class` does not take, and the valid ones."""
    valid = constructor_arguments(model_class)
    for name in model_args:
        if name not in valid:
            raise ValueError(
                f"{model_name} has no argument {name!r}. Its arguments: {', '.join(sorted(valid))}."
                + (f" ({name} comes from the data.)" if name in DATA_ARGUMENTS else "")
            )


def with_model_args(model, model_args):
    """`model` with some constructor arguments changed (e.g. `{"sample_from_average": False}`):
    a new model of its class from its config with `model_args` on top, holding the same weights.

    For arguments that change what the model does with its weights, not which weights it has;
    one that adds or removes a weight is refused (the weight lists no longer match).
    """
    if not model_args:
        return model
    check_model_args(type(model).__name__, type(model), model_args)
    rebuilt = type(model).from_config({**model.get_config(), **model_args})
    weights = model.get_weights()
    if len(rebuilt.weights) != len(weights) or any(
        tuple(w.shape) != tuple(v.shape) for w, v in zip(rebuilt.weights, weights)
    ):
        raise ValueError(f"{', '.join(sorted(model_args))} would change {type(model).__name__}'s weights; "
                         "only arguments that keep them can be changed on a trained model.")
    rebuilt.set_weights(weights)
    return rebuilt


class _RoleOptimizer:
    """One of a model's optimizers as Keras callbacks see it, named by its role."""

    def __init__(self, name, optimizer):
        self.name = name
        self._optimizer = optimizer

    @property
    def learning_rate(self):
        return self._optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self._optimizer.learning_rate = value

    def __getattr__(self, attribute):
        return getattr(self._optimizer, attribute)


class RoleOptimizers:
    """What Keras sees as `model.optimizer` of a model with several optimizers (a GAN's D and G,
    CycleGAN's four): all of them, named by role, and one step counter.

    Keras callbacks read `model.optimizer`: `TensorBoard` takes its `iterations` as the step
    counter (steps per second, summary steps) and logs the learning rate of each of its
    `optimizers` (`learning_rate_<role>`); `LearningRateScheduler` and `ReduceLROnPlateau` set
    those learning rates. `iterations` are those of `counting_role`'s optimizer (one per train
    step), or `counter` when given: a model whose steps update different optimizers in turn
    (StackGAN's stages) counts its steps itself. It owns no state; the model saves the optimizers
    themselves.
    """

    built = True

    def __init__(self, roles, counting_role, counter=None):
        self.roles = dict(roles)
        self.counting_role = counting_role
        self.counter = counter

    @property
    def optimizers(self):
        return [_RoleOptimizer(role, optimizer) for role, optimizer in self.roles.items()]

    @property
    def iterations(self):
        return self.roles[self.counting_role].iterations if self.counter is None else self.counter

    @property
    def variables(self):
        return [variable for optimizer in self.roles.values() for variable in optimizer.variables]

    def __repr__(self):
        return f"RoleOptimizers({', '.join(f'{role}={o.name!r}' for role, o in self.roles.items())})"


class OptimizersByRole:
    """Mixin for a `GenerativeModel` with one optimizer per role over named networks (CycleGAN's
    four, Pix2Pix's and MidiNet's two): compiling, saving and restoring them, and one update.

    The model declares `optimizer_networks()` (`{role: [networks]}`); compiled, each role's
    optimizer is `<role>_optimizer`, and Keras sees them all as `model.optimizer` (a
    `RoleOptimizers` counting the first role's steps).
    """

    def optimizer_networks(self):
        """`{role: [networks]}`: each role's optimizer updates those networks' variables."""
        raise NotImplementedError

    def step_counter(self):
        """The variable Keras counts train steps by, or None: the first role's iterations."""
        return None

    def default_optimizers(self):
        """Adam(2e-4, beta_1=0.5) for every role (DCGAN's settings, which Pix2Pix, CycleGAN and
        MidiNet train with)."""
        return {role: keras.optimizers.Adam(2e-4, beta_1=0.5, name=f"{role}_adam") for role in self.optimizer_networks()}

    def compile_optimizers(self, optimizers, **compile_kwargs):
        """Compiles with `{role: optimizer}`; roles left out get `default_optimizers()`'s. Each is
        built over its networks here (resume restores their state; tf.distribute runs them)."""
        roles = self.optimizer_networks()
        unknown = set(optimizers) - set(roles)
        if unknown:
            raise ValueError(f"{type(self).__name__}'s optimizer roles are {', '.join(roles)}. Received: {sorted(unknown)}")
        for reserved in ("optimizer", "loss", "metrics"):
            if reserved in compile_kwargs:
                raise ValueError(f"{type(self).__name__} owns its optimizers, losses and trackers; `{reserved}` is not accepted.")
        defaults = self.default_optimizers()
        chosen = {role: optimizers.get(role) or defaults[role] for role in roles}
        if len({id(optimizer) for optimizer in chosen.values()}) < len(chosen):
            raise ValueError("Every optimizer role needs its own optimizer instance.")
        super().compile(optimizer=None, **compile_kwargs)
        for role, optimizer in chosen.items():
            setattr(self, f"{role}_optimizer", optimizer)
            optimizer.build([v for network in roles[role] for v in network.trainable_variables])
        self.optimizers_built = True
        self.optimizer = RoleOptimizers(chosen, counting_role=next(iter(roles)), counter=self.step_counter())
        self._compile_kwargs = {key: compile_kwargs[key] for key in ("steps_per_execution", "jit_compile") if key in compile_kwargs}

    def optimizer_roles(self):
        return {role: getattr(self, f"{role}_optimizer") for role in self.optimizer_networks()}

    def get_compile_config(self):
        return {"optimizers": {role: keras.saving.serialize_keras_object(optimizer)
                               for role, optimizer in self.optimizer_roles().items()}, **self._compile_kwargs}

    def compile_from_config(self, config):
        config = dict(config)
        optimizers = {role: keras.saving.deserialize_keras_object(value) for role, value in config.pop("optimizers").items()}
        self.compile_optimizers(optimizers, **config)

    def apply_gradients(self, role, loss, tape, networks):
        """One update of `role`'s optimizer on `networks` from `loss` recorded on `tape`."""
        optimizer = getattr(self, f"{role}_optimizer")
        variables = [v for network in networks for v in network.trainable_variables]
        optimizer.apply(tape.gradient(optimizer.scale_loss(loss), variables), variables)


class GenerativeModel(keras.Model):
    """Base of every trainable model in gan_tf: the contract the pipeline talks to.

    See the module docstring for what each method promises. Subclasses: `gan_tf.GAN` (and
    through it every GAN here); tests/test_contract.py trains a tiny model that is not a GAN
    through the same callbacks and export.
    """

    # The range generated images live in; data pipelines scale real images to it.
    value_range = (-1.0, 1.0)
    # The batch size `train.py` uses for this model unless told otherwise.
    default_batch_size = 64
    # Train steps per `tf.function` call `train.py` uses unless told otherwise.
    default_steps_per_execution = 1
    # Whether the model trains on `(images, labels)` batches and needs labelled data.
    needs_labels = False
    # Arguments of a base class's constructor that this class sets itself (not user settings).
    fixed_arguments = ()
    # `{argument: value}` that a config saved before the argument existed (or was saved) was
    # trained with, where that differs from today's default: `from_config` and a resumed run
    # read such a config with these, so the saved weights fit.
    older_config_defaults = {}
    # What the model makes and trains on: "images" or "melody" (`DatasetInfo.modality`).
    modality = "images"

    def scaled(self, images_uint8):
        """uint8 images (real data as it is stored) as float32 in `value_range`."""
        low, high = self.value_range
        return np.asarray(images_uint8).astype(np.float32) / 255.0 * (high - low) + low

    @classmethod
    def check_modality(cls, info):
        """Raises ValueError when dataset `info` holds another kind of data than the model makes."""
        found = getattr(info, "modality", "images")
        if found != cls.modality:
            hint = {"melody": "bach_chorales or midi:PATH", "images": "mnist_5k, fashion_mnist, folder:PATH, ...",
                    "captioned_images": "fashion_mnist_captions or captions:PATH"}
            raise ValueError(f"{cls.__name__} makes {cls.modality} and trains on {cls.modality} data "
                             f"({hint.get(cls.modality, cls.modality)}); this dataset holds {found}.")

    @classmethod
    def from_data(cls, info, **model_args):
        """The model sized for dataset `info` (a `gan_tf.data.DatasetInfo`), with `model_args`.

        Raises:
            ValueError: for a model that needs labels on unlabelled data, or bad arguments
                (the constructor's own checks).
        """
        cls.check_modality(info)
        kwargs = dict(model_args)
        kwargs["image_shape"] = tuple(info.image_shape)
        accepts_classes = "num_classes" in inspect.signature(cls.__init__).parameters
        if cls.needs_labels and info.num_classes < 2:
            raise ValueError(
                f"{cls.__name__} is conditional and needs labelled data with at least 2 classes; this "
                "dataset has " + (f"{info.num_classes} class" if info.num_classes else "no labels")
                + " (a folder: needs its images in one sub-folder per class)."
            )
        if accepts_classes and info.num_classes >= 2:
            kwargs["num_classes"] = info.num_classes
        return cls(**kwargs)

    def plan_training(self, total_steps):
        """Told the run's total number of train steps before its optimizers are made
        (`default_optimizers`); a model whose schedule follows the run's length (CycleGAN's
        learning rate, constant for the first half, then decaying to 0) keeps it. Nothing by
        default."""

    def default_optimizers(self):
        """`{role: keras optimizer}` used when none are given."""
        raise NotImplementedError

    def compile_optimizers(self, optimizers, **compile_kwargs):
        """Compiles with `{role: optimizer}` (every role of `default_optimizers`)."""
        raise NotImplementedError

    def optimizer_roles(self):
        """`{role: optimizer}` of the compiled model (for logs and hparams)."""
        raise NotImplementedError

    def sample(self, num_samples, seed=None, conditions=None, **options):
        """A `Samples(images, conditions)` of `num_samples` images."""
        raise NotImplementedError

    def preview(self, rows, columns, seed):
        """The `rows * columns` images of a preview grid, row-major, in `value_range`."""
        return self.sample(rows * columns, seed=seed).images

    def export_metadata(self):
        """JSON-able facts a client needs (image shape, value range, conditions, ...)."""
        raise NotImplementedError

    def export_archive(self, metadata):
        """A `keras.export.ExportArchive` holding the model's serving signatures."""
        raise NotImplementedError

    def warmup_requests(self):
        """`[(signature_name, {input: numpy value})]` for TF Serving to run on load."""
        return []

    def discriminator_view(self, images, seed):
        """What the model's discriminator is shown of real `images` (in `value_range`) in
        training, drawn with `seed` (a GAN's augmentation), or None when it sees them as they are."""
        return None

    def preview_audio(self, seed):
        """`(audio, sample_rate)` of a preview to listen to (TensorBoard's audio tab), or None."""
        return None

    def train_step_flops_per_image(self):
        """FLOPs of one train step per training image."""
        raise NotImplementedError

    def log_likelihood(self, images, conditions=None, seed=0):
        """Each image's log-likelihood (or a lower bound on it), for likelihood-based models:
        `{"log_likelihood": nats [N], "bits_per_dim": [N], ...}` for uint8 `images`; None for
        models that define none (a GAN's samples have no density to evaluate)."""
        return None

    # ------------------------------------------------------------------------------ train

    def after_train_step(self):
        """Work to do after each train step inside the compiled train function (a GAN's moving
        average of G, for instance). Nothing by default."""

    def make_train_function(self, force=False):
        """Keras' train function, with every op of a train step made to wait for its batch, and
        `after_train_step` run after the step.

        With `steps_per_execution=1`, Keras 3.15 calls the step on `iterator.get_next()` once
        more after the last batch of a finite dataset, to find the end. TensorFlow runs the ops
        of that call that do not need the batch before the end-of-data error stops it: with a
        static batch size these include the noise draw and the trackers' `count` updates, so
        every epoch's logged means came out `N / (N + 1)` of their value and the random streams
        moved on. Making the whole step depend on the batch keeps that call a no-op.
        """
        if self.train_function is not None and not force:
            return self.train_function

        def train_step_after_batch(data):
            with tf.control_dependencies([t for t in tf.nest.flatten(data) if t is not None]):  # train_on_batch(x): y None
                logs = self.train_step(data)
                self.after_train_step()
                return logs

        self.train_function = self._make_function(train_step_after_batch)
        return self.train_function

    # ------------------------------------------------------------------------------ state

    _RANDOM_STATE_KEY = "random_state_{}"
    _TRACKER_KEY = "tracker_{}"
    # Where GANs saved their noise stream before every random stream was saved (still read).
    _LEGACY_NOISE_STATE_KEY = "noise_seed_state"

    def random_streams(self):
        """The state variables of every `keras.random.SeedGenerator` in the model and its layers
        (the model's noise, each Dropout's masks, ...), in a fixed order.

        Keras keeps them out of `weights`, so a `.keras` file does not hold them by itself.
        """
        weights = {id(variable) for variable in self.weights}
        return [variable for variable in self.variables if id(variable) not in weights]

    def tracker_variables(self):
        """The variables of the model's metric trackers (running totals and counts)."""
        return [variable for metric in self.metrics for variable in metric.variables]

    def save_own_variables(self, store):
        """Saves the random streams' positions and the trackers' running sums too.

        With them, a resumed run draws the noise and dropout masks the uninterrupted run would
        have drawn, and an epoch resumed mid-way logs the mean over all of its steps.
        """
        super().save_own_variables(store)
        for index, variable in enumerate(self.random_streams()):
            store[self._RANDOM_STATE_KEY.format(index)] = np.asarray(variable)
        for index, variable in enumerate(self.tracker_variables()):
            store[self._TRACKER_KEY.format(index)] = np.asarray(variable)

    def load_own_variables(self, store):
        keys = set(store.keys())
        own = {key for key in keys if key.startswith(("random_state_", "tracker_")) or key == self._LEGACY_NOISE_STATE_KEY}
        if self._LEGACY_NOISE_STATE_KEY in keys and hasattr(self, "seed_generator"):
            self.seed_generator.state.assign(store[self._LEGACY_NOISE_STATE_KEY])
        for index, variable in enumerate(self.random_streams()):
            key = self._RANDOM_STATE_KEY.format(index)
            if key in keys:
                variable.assign(store[key])
        for index, variable in enumerate(self.tracker_variables()):
            key = self._TRACKER_KEY.format(index)
            if key in keys:
                variable.assign(store[key])
        super().load_own_variables({key: store[key] for key in keys if key not in own})
