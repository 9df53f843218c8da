"""Writes real images as a folder of image files: Fashion-MNIST's test split, one sub-folder per class.

The offline stand-in for "a folder of your own photos" (README, "Train on your own images"; the
folder-pipeline rows of bench/throughput.py): the 10,000 Fashion-MNIST test images (Debian's
`dataset-fashion-mnist`, or IDX files in --data_dir), upscaled bicubically from 28x28 to
--size, written as `<output>/<class name>/<index>.<format>`.

    python bench/fashion_folder.py --output=/tmp/fashion64 --size=64
    python bench/fashion_folder.py --output=/tmp/fashion_jpeg --size=64 --format=jpeg --rgb --copies=2
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags (defined only when run as a script: bench/throughput.py imports
    `write_folder` and has flags of its own)."""
    flags.DEFINE_string("output", None, "Folder to write (class sub-folders are created).", required=True)
    flags.DEFINE_integer("size", 64, "Side of the written images (bicubic upscaling from 28).")
    flags.DEFINE_enum("format", "png", ["png", "jpeg"], "File format.")
    flags.DEFINE_bool("rgb", False, "Write 3-channel images (the grey value in each channel).")
    flags.DEFINE_integer("limit", None, "Write only the first N images.")
    flags.DEFINE_integer("copies", 1, "Write every image this many times (a larger folder of the same data).")
    flags.DEFINE_string("data_dir", None, "Fashion-MNIST IDX files (default: Debian's dataset-fashion-mnist).")


def write_folder(output, size=64, image_format="png", rgb=False, limit=None, copies=1, data_dir=None):
    """Writes the images; returns how many files were written."""
    from PIL import Image

    from gan_tf import data

    images, labels = data.load_arrays("fashion_mnist", data_dir=data_dir, split="test")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    names = [name.replace("/", "-") for name in data.DATASETS["fashion_mnist"].class_names]
    for name in names:
        os.makedirs(os.path.join(output, name), exist_ok=True)
    extension = "jpg" if image_format == "jpeg" else "png"
    count = 0
    for index, (pixels, label) in enumerate(zip(images, labels)):
        image = Image.fromarray(pixels[..., 0]).resize((size, size), Image.BICUBIC)
        if rgb:
            image = image.convert("RGB")
        for copy in range(copies):
            suffix = f"_{copy}" if copies > 1 else ""
            image.save(os.path.join(output, names[label], f"{index:05d}{suffix}.{extension}"))
            count += 1
    return count


def main(argv):
    count = write_folder(FLAGS.output, FLAGS.size, FLAGS.format, FLAGS.rgb, FLAGS.limit, FLAGS.copies, FLAGS.data_dir)
    print(f"Wrote {count} images to {FLAGS.output}/<class>/")


if __name__ == "__main__":
    define_flags()
    app.run(main)
