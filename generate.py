"""Draws a grid of samples from a trained generator, locally or through TensorFlow Serving.

    python generate.py --model_path=saved_models/dcgan/1 --num_samples=64 --output=grid.png
    python generate.py --model_path=runs/cgan/checkpoints/epoch_0020.keras --labels=7 --output=sevens.png
    python generate.py --server=localhost:8500 --model_name=cgan --labels=0,1,2 --output=grid.png
    python generate.py --model_path=saved_models/biggan/1 --labels=6 --truncation=1.0 --output=shirts.png
    python generate.py --model_path=saved_models/pix2pix/1 --input=edges/ --output=translated/
    python generate.py --model_path=saved_models/midinet/1 --output=song.mid --bars=8 --chords=C,G,Am,F
    python generate.py --model_path=saved_models/stackgan/1 --caption="a dark pullover" --num_samples=16
    python generate.py --model_path=saved_models/stackgan/2 --embeddings=birds.npy --num_samples=16

With `--input` (image-to-image models: Pix2Pix, CycleGAN), every image file given (a file, or the
image files in a folder) is translated and written to the `--output` folder under its own name as
a PNG; images not of the model's input size are first fitted to it (the training resize policy:
shorter side scaled, centre cut), and said so.

A melody model (MidiNet) writes one song of `--bars` bars over `--chords` (cycled; default
C,G,Am,F) as a standard MIDI file at `--output` (`.mid`): the melody on track 0 and the chords,
held as triads, on track 1; `--piano_roll=FILE.png` also draws it.

A text-to-image model (StackGAN) draws `--num_samples` images of the `--caption`s (repeatable,
cycled over the samples) into the grid at `--output`; one trained on precomputed text embeddings
takes `--embeddings=FILE.npy` instead (float `[N, D]`, rows cycled over the samples).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from absl import app, flags

from gan_tf.grids import image_grid, save_image
from gan_tf.serving.client import ServingError
from gan_tf.serving.sampling import newest_version, sample_local, sample_remote

flags.DEFINE_string("model_path", None, "A SavedModel version directory, an export's base path (its newest "
                    "version) or a .keras file (local sampling).")
flags.DEFINE_string("server", None, "TF Serving host:port (8500 for grpc, 8501 for rest) instead of --model_path.")
flags.DEFINE_string("model_name", None, "The model's name on the server (default: --model_path's parent name).")
flags.DEFINE_enum("protocol", "grpc", ["grpc", "rest"], "How to talk to --server.")
flags.DEFINE_integer("num_samples", 64, "How many images.")
flags.DEFINE_list("labels", None, "Conditional models: one label for all, or a list cycled over the samples.")
flags.DEFINE_integer("seed", None, "Seed for reproducible noise.")
flags.DEFINE_float(
    "truncation", None, "Truncation trick: noise truncated to [-t, t] (BigGAN exports, any .keras GAN; 0 = none)."
)
flags.DEFINE_integer("columns", 8, "Images per row of the grid.")
flags.DEFINE_string("output", "samples.png", "Where to write the PNG grid (with --input: the folder for the translations).")
flags.DEFINE_string("input", None, "Image-to-image models: an image file or a folder of them to translate.")
flags.DEFINE_string("direction", None, "Image-to-image models: which mapping (default: the model's first; CycleGAN: "
                    "a_to_b or b_to_a).")

flags.DEFINE_multi_string("caption", [], "Text-to-image models (StackGAN): a caption to draw, e.g. --caption=\"a dark pullover\" (repeatable; --num_samples images, the captions cycled).")
flags.DEFINE_string("embeddings", None, "Text-to-image models trained on precomputed text embeddings: a .npy file of "
                    "float [N, D] embeddings to draw (rows cycled over --num_samples).")
flags.DEFINE_integer("bars", 8, "Melody models: bars of the song.")
flags.DEFINE_string("chords", "C,G,Am,F", "Melody models: the chord of each bar (cycled): major and minor triads such as C,G,Am,F,Bbm.")
flags.DEFINE_string("piano_roll", None, "Melody models: also draw the song's piano roll to this PNG.")

FLAGS = flags.FLAGS


def _fail(message):
    print(f"generate.py: error: {message}", file=sys.stderr)
    return 2


def _read_inputs(path, shape):
    """`(names, uint8 images at shape, count fitted)` of the image file(s) at `path`."""
    import tensorflow as tf

    from gan_tf.data.image_files import IMAGE_EXTENSIONS, ImageFileError, is_image_name, read_image, shown_path
    from gan_tf.data.source import fit_to_size

    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if is_image_name(n) and not n.startswith("."))
        if not files:
            raise ValueError(f"{path} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise FileNotFoundError(f"No image file or folder at {path}")
    names, images, fitted = [], [], 0
    for file in files:  # read as training reads them: upright, alpha over white (gan_tf.data.image_files)
        try:
            image = read_image(file, shape[2], tuple(shape[:2]))
        except ImageFileError as error:
            raise ValueError(f"{shown_path(file)} is not an image that reads: {error}") from None
        fitted += tuple(image.shape[:2]) != tuple(shape[:2])
        images.append(fit_to_size(tf.constant(image), tuple(shape[:2])).numpy())
        names.append(os.path.splitext(os.path.basename(file))[0] + ".png")
    return names, np.stack(images), fitted


def _translate(model_path):
    from gan_tf.serving.sampling import describe_model, translate_local

    translation = describe_model(model_path)["translation"]
    if not translation:
        raise ValueError(f"--input is for image-to-image models; {FLAGS.model_path} samples images (use --num_samples)")
    direction = FLAGS.direction or translation["default"]
    if direction not in translation["directions"]:
        raise ValueError(f"{FLAGS.model_path} translates {', '.join(translation['directions'])}. Received: {direction}")
    names, images, fitted = _read_inputs(FLAGS.input, translation["directions"][direction]["source_shape"])
    if fitted:
        print(f"Fitted {fitted} of {len(images)} input(s) to the model's input size "
              f"{'x'.join(map(str, translation['directions'][direction]['source_shape']))}.")
    outputs = translate_local(FLAGS.model_path, images, seed=FLAGS.seed, direction=direction)
    import tensorflow as tf

    os.makedirs(FLAGS.output, exist_ok=True)
    for name, output in zip(names, outputs):  # the uint8 pixels as they are, not a plot
        tf.io.write_file(os.path.join(FLAGS.output, name), tf.io.encode_png(output))
    print(f"Wrote {len(outputs)} translation(s) ({direction}) to {FLAGS.output}")
    return 0


def _compose(model_path):
    """Writes one song of a melody model as a MIDI file (see the module docstring)."""
    from gan_tf.data import music
    from gan_tf.serving.sampling import compose_local

    if not FLAGS.output.lower().endswith((".mid", ".midi")):
        raise ValueError(f"{model_path} writes melodies: give --output=FILE.mid. Received: {FLAGS.output}")
    if FLAGS.bars < 1:
        raise ValueError(f"--bars must be at least 1. Received: {FLAGS.bars}")
    chords = np.resize(music.parse_chords(FLAGS.chords), FLAGS.bars).astype(np.int32)
    bars = compose_local(model_path, chords[None], seed=FLAGS.seed)[0]
    notes = music.decode_bars(bars)
    music.write_midi(FLAGS.output, notes, chords)
    if FLAGS.piano_roll:
        save_image(FLAGS.piano_roll, image_grid(music.display_bars(bars), (0.0, 1.0), FLAGS.bars))
    names = ",".join(music.CHORD_NAMES[c] for c in chords)
    print(f"Wrote {FLAGS.output}: {FLAGS.bars} bars, {len(notes)} notes over {names}"
          + (f"; piano roll {FLAGS.piano_roll}" if FLAGS.piano_roll else ""))
    return 0


def _read_embeddings(path, size):
    """float32 `[N, size]` from a .npy file, or ValueError saying what is wrong with it."""
    try:
        embeddings = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"--embeddings={path} is not a readable .npy array ({error})") from None
    if embeddings.ndim != 2 or embeddings.shape[1] != size or len(embeddings) == 0:
        raise ValueError(f"--embeddings={path} must hold float [N, {size}] rows. Received: shape {list(embeddings.shape)}")
    return embeddings.astype(np.float32)


def _draw_captions(model_path, embedding_dim=None):
    """Writes a grid of a text-to-image model's images for `--caption` (or `--embeddings`, for a
    model trained on precomputed embeddings of `embedding_dim` values; see the module docstring)."""
    from gan_tf.serving.sampling import caption_local

    if embedding_dim:
        if FLAGS.caption or not FLAGS.embeddings:
            raise ValueError(f"{model_path} draws images from precomputed text embeddings: give --embeddings=FILE.npy "
                             f"(float [N, {embedding_dim}])")
        given = _read_embeddings(FLAGS.embeddings, embedding_dim)
    elif not FLAGS.caption:
        raise ValueError(f'{model_path} draws images from text: give --caption="a dark pullover" (repeatable)')
    else:
        given = FLAGS.caption
    if FLAGS.num_samples < 1:
        raise ValueError(f"--num_samples must be at least 1. Received: {FLAGS.num_samples}")
    texts = [given[i % len(given)] for i in range(FLAGS.num_samples)]
    images = caption_local(model_path, np.stack(texts) if embedding_dim else texts, seed=FLAGS.seed)
    save_image(FLAGS.output, image_grid(images.astype(np.float32), (0.0, 255.0), FLAGS.columns))
    what = "embedding(s)" if embedding_dim else "caption(s)"
    print(f"Wrote {len(images)} images of {len(given)} {what} to {FLAGS.output}")
    return 0


def main(argv):
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    version = FLAGS.model_path and newest_version(FLAGS.model_path)
    if version != FLAGS.model_path:
        FLAGS.model_path = version
        print(f"Drawing from {version}, the newest version of that export")
    if FLAGS.model_path and not FLAGS.input and not FLAGS.server:
        from gan_tf.serving.sampling import describe_model

        try:
            description = describe_model(FLAGS.model_path)
            if description["melody"]:
                return _compose(FLAGS.model_path)
            if description["captions"] or description["embeddings"]:
                return _draw_captions(FLAGS.model_path, description["embeddings"])
            if FLAGS.caption or FLAGS.embeddings:
                return _fail(f"--caption and --embeddings are for text-to-image models; {FLAGS.model_path} does not "
                             "take text")
        except (FileNotFoundError, ValueError) as error:
            return _fail(error)
    if FLAGS.input:
        if not FLAGS.model_path:
            return _fail("--input needs --model_path (local translation)")
        try:
            return _translate(FLAGS.model_path)
        except (FileNotFoundError, ValueError) as error:
            return _fail(error)
    if bool(FLAGS.model_path) == bool(FLAGS.server):
        return _fail("give exactly one of --model_path (local) or --server (TF Serving)")
    if FLAGS.num_samples < 1:
        return _fail(f"--num_samples must be at least 1. Received: {FLAGS.num_samples}")
    try:
        labels = [int(label) for label in FLAGS.labels] if FLAGS.labels else None
    except ValueError:
        return _fail(f"--labels must be integers. Received: {','.join(FLAGS.labels)}")
    try:
        if FLAGS.server:
            if not FLAGS.model_name:
                return _fail("--server needs --model_name")
            images = sample_remote(
                FLAGS.server, FLAGS.model_name, FLAGS.num_samples, labels, FLAGS.seed, FLAGS.protocol, FLAGS.truncation
            )
        else:
            images = sample_local(FLAGS.model_path, FLAGS.num_samples, labels, FLAGS.seed, FLAGS.truncation)
    except (FileNotFoundError, ValueError, ServingError) as error:
        return _fail(error)
    save_image(FLAGS.output, image_grid(images.astype(np.float32), (0.0, 255.0), FLAGS.columns))
    print(f"Wrote {len(images)} samples to {FLAGS.output}")
    return 0


if __name__ == "__main__":
    app.run(main)
