"""Image files read as a person sees them in a viewer: the one reader behind every path that
reads an image file (`folder:` data in memory and streaming, captions, pairs and
`generate.py --input`), so training and a single file agree pixel for pixel.

The rules, in the order they apply (Pillow does the decoding):

* **Which files.** A folder is searched recursively; symbolic links are followed, each folder
  once (a link back up is a loop: skipped, and the scan ends). Hidden files and folders
  (names starting with `.`: macOS `._name.jpg` AppleDouble files, `.DS_Store`,
  `.ipynb_checkpoints`) are skipped; so are entries that are not regular files (a FIFO would
  block the reader), empty files and files that cannot be read. Names that are not UTF-8 are
  read as they are (passed to the OS as bytes) and shown with `\\x..` escapes.
* **Size.** A JPEG much larger than the size it is wanted at is decoded at a reduced scale
  (1/2, 1/4 or 1/8, Pillow's `draft`: never smaller than that size), so a 12,000 x 9,000 photo
  costs little memory when training at 64 x 64. A file whose decoded pixels would exceed
  `max_pixels` (`DEFAULT_MAX_PIXELS`, 120 megapixels: a 100-megapixel photo is admitted) is
  refused before it is decoded. Pillow's own decompression-bomb guard (about 179 megapixels,
  checked before any reduction) refuses larger files still.
* **Orientation.** The EXIF orientation tag (any of its eight values) is applied, as every
  viewer does: a phone's portrait photo, stored as a landscape JPEG with the tag, is upright.
* **Frames.** An animated GIF, WebP or PNG gives its first frame.
* **Modes.** 16-bit greyscale (`I;16`, and `I` as Pillow opens 16-bit PNGs) is scaled from
  0..65,535 to 0..255 (rounded); floating-point greyscale (`F`) is read as intensities in
  [0, 1]; 1-bit images give 0 and 255; palettes are expanded; CMYK and YCCK JPEGs are converted
  to RGB by Pillow (Adobe's inverted CMYK included).
* **Transparency** (RGBA, LA, PA, a palette with a transparent entry) is composited over white,
  `TRANSPARENT_BACKGROUND`, as a document viewer shows it.
* **Channels.** 1 (luma: weights 0.299, 0.587, 0.114, rounded) or 3 (grey repeated); `None`
  keeps the file's own: 1 for a greyscale file, else 3.

A file that breaks a rule raises `ImageFileError`, whose message says why; the data sources
skip such files with one warning that counts them and names the first few.
"""

import logging
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
DEFAULT_MAX_PIXELS = 120_000_000
TRANSPARENT_BACKGROUND = 255
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_EXIF_ORIENTATION = 0x0112
_GREY_MODES = ("1", "L", "LA", "La", "I", "F") + tuple(m for m in Image.MODES if m.startswith("I;16"))

# Our `max_pixels` is the limit that matters; Pillow's warning above 89 megapixels would
# repeat it for every large photo a user means to train on.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageFileError(ValueError):
    """An image file that is not read, and why (the message names the reason, not the path)."""


def shown_path(path):
    """`path` as text that can be printed, whatever bytes its name holds (not UTF-8: `\\x..`)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_image(path, channels=None, size=None, max_pixels=DEFAULT_MAX_PIXELS):
    """The pixels of one image file as a viewer shows them (the module's rules).

    Args:
        path: the file (str or bytes).
        channels: 1 or 3, or None for the file's own (1 when greyscale, else 3).
        size: `(H, W)` the image is wanted at, or None: a JPEG at least twice as large is
            decoded at a reduced scale, never below `size` (in the orientation it is shown in).
        max_pixels: refuse files whose decoded pixels would be more.

    Returns:
        `uint8 [height, width, channels]`, upright.

    Raises:
        ImageFileError: the file is not a regular file, is empty, cannot be read, is not an
            image Pillow decodes, is truncated or corrupt, or is above `max_pixels`.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None. Received: {channels}")
    try:
        status = os.stat(path)
    except OSError as error:
        raise ImageFileError(f"cannot be read ({error.strerror or type(error).__name__})") from None
    if not stat.S_ISREG(status.st_mode):
        raise ImageFileError("not a regular file")
    if status.st_size == 0:
        raise ImageFileError("empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            image.seek(0)  # the first frame of an animation
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            if size is not None and image.format == "JPEG":
                height, width = size if orientation not in (5, 6, 7, 8) else size[::-1]
                image.draft(image.mode, (width, height))  # a reduced scale, never below (width, height)
            if image.size[0] * image.size[1] > max_pixels:
                raise ImageFileError(f"{image.size[0]}x{image.size[1]} pixels, above the limit of {max_pixels:,} "
                                     "(--max_image_pixels)")
            image.load()
            pixels = _as_8_bit(ImageOps.exif_transpose(image))
    except ImageFileError:
        raise
    except Image.DecompressionBombError as error:
        raise ImageFileError(f"too large to open safely ({error})") from None
    except OSError as error:
        raise ImageFileError(_reason(error)) from None
    except (ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError) as error:  # Pillow's parsers raise these too
        raise ImageFileError(f"corrupt ({type(error).__name__}: {error})") from None
    return _to_channels(pixels, channels)


def probe_image(path, size=None, max_pixels=DEFAULT_MAX_PIXELS):
    """`(height, width, channels)` of a file as `read_image` gives it (decoded in full, so a
    truncated file is caught), or the `ImageFileError` text."""
    try:
        pixels = read_image(path, None, size, max_pixels)
    except ImageFileError as error:
        return str(error)
    return pixels.shape


def _reason(error):
    text = str(error)
    lowered = text.lower()
    if isinstance(error, Image.UnidentifiedImageError) or "cannot identify image file" in text:
        return "not an image Pillow can read"
    if "truncated" in lowered or "broken data stream" in lowered or "image file is" in lowered:
        return f"truncated or corrupt ({text})"
    if error.strerror:
        return f"cannot be read ({error.strerror})"
    return f"{type(error).__name__}: {text}"


def _as_8_bit(image):
    """A loaded Pillow image as `uint8 [h, w]` (greyscale) or `[h, w, 3]` (colour), by the
    module's rules for modes and transparency."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGB" and "transparency" in image.info:  # a PNG's one transparent colour
        image = image.convert("RGBA")
    elif mode == "L" and "transparency" in image.info:
        image = image.convert("LA")
    mode = image.mode
    if mode == "F":
        pixels = np.asarray(image, np.float64) * 255.0
    elif mode == "I" or mode.startswith("I;16"):
        pixels = np.asarray(image).astype(np.float64) * (255.0 / 65535.0)
    else:
        pixels = np.asarray(image)
        if mode in ("LA", "RGBA"):
            alpha = pixels[..., -1:].astype(np.float64) / 255.0
            pixels = pixels[..., :-1] * alpha + TRANSPARENT_BACKGROUND * (1.0 - alpha)
            pixels = pixels[..., 0] if mode == "LA" else pixels
        elif mode not in ("L", "RGB"):
            raise ImageFileError(f"an image mode this reader does not convert ({mode})")
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _to_channels(pixels, channels):
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if channels is None or channels == pixels.shape[-1]:
        return np.ascontiguousarray(pixels)
    if channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    luma = pixels.astype(np.float32) @ np.asarray(LUMA_WEIGHTS, np.float32)
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)[..., np.newaxis]


def is_image_name(name):
    return os.fsdecode(name).lower().endswith(IMAGE_EXTENSIONS)


class FolderScan:
    """What `find_image_files` found under a folder.

    Attributes:
        images: paths (sorted) of image files by their extension, still to be decoded.
        ignored: paths of files with other extensions.
        hidden: hidden files and folders skipped (AppleDouble `._*`, `.DS_Store`, ...).
        loops: folders reached again through a symbolic link, not searched twice.
    """

    def __init__(self):
        self.images, self.ignored, self.hidden, self.loops = [], [], [], []

    def notes(self):
        """Short counts for a data summary: `["3 hidden skipped", ...]`."""
        notes = []
        if self.hidden:
            notes.append(f"{len(self.hidden)} hidden skipped")
        if self.loops:
            notes.append(f"{len(self.loops)} link loop(s) not followed")
        if self.ignored:
            notes.append(f"{len(self.ignored)} non-image files ignored")
        return notes


def find_image_files(root):
    """Searches `root` recursively by the module's rules (`FolderScan`); terminates on link loops."""
    scan = FolderScan()
    visited = set()

    def identity(path):
        status = os.stat(path)
        return status.st_dev, status.st_ino

    visited.add(identity(root))
    for directory, subdirectories, files in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(subdirectories):
            path = os.path.join(directory, name)
            if name.startswith("."):
                scan.hidden.append(path)
                continue
            try:
                key = identity(path)
            except OSError:
                continue
            if key in visited:
                scan.loops.append(path)
                continue
            visited.add(key)
            kept.append(name)
        subdirectories[:] = kept
        for name in sorted(files):
            path = os.path.join(directory, name)
            if name.startswith("."):
                scan.hidden.append(path)
            elif is_image_name(name):
                scan.images.append(path)
            else:
                scan.ignored.append(path)
    return scan


def warn_skipped(what, kind, skipped, named=5):
    """One warning for `[(path, reason)]` skipped: "`what`: skipped N `kind`: the first `named`"."""
    if not skipped:
        return
    shown = "; ".join(f"{shown_path(path)} ({reason})" for path, reason in skipped[:named])
    logger.warning("%s: skipped %d %s: %s%s", what, len(skipped), kind, shown, " ..." if len(skipped) > named else "")
