"""Writes a folder of the image files real folders hold (phones, cameras, scanners, editors,
other operating systems), each with the pixels a viewer shows for it, for tests and
`bench/faults.py`:

    python tests/image_oddities.py /tmp/oddities     # writes it, prints what each file is

`write_oddities(root)` returns `{relative path: expected uint8 [h, w, 3] pixels}` for the files
that must be read, and `{relative path: why}` for those that must be skipped. The expected
pixels are built here with numpy from the EXIF and mode rules, not by the reader under test.
"""

import io
import os
import sys

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
SIZE = 16  # every readable image but the portrait shows as SIZE x SIZE pixels

# What a viewer does to the stored pixels for each EXIF orientation (TIFF 6.0 / Exif 2.3).
SHOWN = {
    1: lambda s: s,
    2: lambda s: s[:, ::-1],  # mirrored left-right
    3: lambda s: s[::-1, ::-1],  # rotated 180
    4: lambda s: s[::-1, :],  # mirrored top-bottom
    5: lambda s: np.rot90(s[:, ::-1], k=1),  # mirrored, then rotated 90 counter-clockwise: the transpose
    6: lambda s: np.rot90(s, k=-1),  # rotated 90 clockwise (a phone held upright)
    7: lambda s: np.rot90(s[:, ::-1], k=-1),  # mirrored, then rotated 90 clockwise: the transverse
    8: lambda s: np.rot90(s, k=1),  # rotated 90 counter-clockwise
}


def quadrants(height=SIZE, width=SIZE):
    """An image no flip or rotation leaves unchanged: four solid quadrants of distinct colours."""
    image = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w] = (230, 30, 30)
    image[:h, w:] = (30, 200, 30)
    image[h:, :w] = (30, 30, 220)
    image[h:, w:] = (240, 240, 20)
    return image


def _save(root, name, image, **options):
    path = os.path.join(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.save(path, **options)
    return path


def _exif(orientation):
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif


def _write_ycck_jpeg(path, ink):
    """A solid YCCK JPEG (Adobe transform 2, as Photoshop writes CMYK) of `ink` (C, M, Y, K as Pillow
    holds them). Pillow writes no YCCK, so this stores the YCbCr of the ink's C, M, Y planes (the
    JFIF equations) as a plain Adobe CMYK JPEG, which Pillow saves inverted, and sets the APP14
    transform byte to 2: libjpeg then converts the planes back, 255 - RGB(Y, Cb, Cr), to the ink."""
    cyan, magenta, yellow, black = ink
    luma = 0.299 * cyan + 0.587 * magenta + 0.114 * yellow
    planes = (luma, 128 + (yellow - luma) / 1.772, 128 + (cyan - luma) / 1.402)
    stored = tuple(255 - int(round(min(255.0, max(0.0, v)))) for v in planes) + (black,)
    encoded = io.BytesIO()
    Image.new("CMYK", (SIZE, SIZE), stored).save(encoded, "JPEG", quality=95, subsampling=0)
    data = bytearray(encoded.getvalue())
    adobe = data.find(b"Adobe")  # APP14: "Adobe", version (2 bytes), flags0 (2), flags1 (2), transform (1)
    data[adobe + 11] = 2
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(bytes(data))


def write_oddities(root):
    """Writes the folder; returns `(readable, skipped)` (module docstring)."""
    os.makedirs(root, exist_ok=True)
    readable, skipped = {}, {}
    upright = quadrants()
    for orientation, shown in SHOWN.items():
        # Stored so that the viewer's transform gives `upright`: the inverse of `shown`.
        stored = next(s for s in _candidates(upright) if np.array_equal(shown(s), upright))
        for extension in ("png", "jpg"):
            name = f"orientation/exif_{orientation}.{extension}"
            options = {"quality": 95, "subsampling": 0} if extension == "jpg" else {}  # 4:4:4: solid 8x8 blocks stay solid
            _save(root, name, Image.fromarray(np.ascontiguousarray(stored)), exif=_exif(orientation), **options)
            readable[name] = upright
    # A phone's portrait photo: stored landscape (16 high, 32 wide), shown 32 high and 16 wide.
    portrait = quadrants(2 * SIZE, SIZE)
    _save(root, "orientation/portrait_6.jpg", Image.fromarray(np.ascontiguousarray(np.rot90(portrait, k=1))),
          exif=_exif(6), quality=95, subsampling=0)
    readable["orientation/portrait_6.jpg"] = portrait

    # Modes.
    cmyk = Image.new("CMYK", (SIZE, SIZE), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    _save(root, "modes/cmyk.jpg", cmyk, quality=95, subsampling=0)
    readable["modes/cmyk.jpg"] = np.full((SIZE, SIZE, 3), (255, 0, 0), np.uint8)
    _write_ycck_jpeg(os.path.join(root, "modes/ycck.jpg"), (0, 255, 255, 0))  # the same red ink, stored as YCCK
    readable["modes/ycck.jpg"] = np.full((SIZE, SIZE, 3), (255, 0, 0), np.uint8)
    grey16 = np.tile(np.array([0, 257 * 100, 65535, 32768], np.uint16), (SIZE, SIZE // 4))
    _save(root, "modes/grey16.png", Image.fromarray(grey16))
    readable["modes/grey16.png"] = np.repeat(np.round(grey16 * (255 / 65535)).astype(np.uint8)[..., None], 3, -1)
    palette = Image.new("P", (SIZE, SIZE), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, SIZE, SIZE // 2))  # top half entry 1 (blue), bottom half entry 0 (red, transparent)
    _save(root, "modes/palette_transparent.png", palette, transparency=0)
    expected = np.zeros((SIZE, SIZE, 3), np.uint8)
    expected[: SIZE // 2] = (0, 0, 255)
    expected[SIZE // 2:] = 255  # the transparent entry shows the white background
    readable["modes/palette_transparent.png"] = expected
    grey_alpha = np.zeros((SIZE, SIZE, 2), np.uint8)
    grey_alpha[..., 0] = 40
    grey_alpha[:, : SIZE // 2, 1] = 255  # left opaque, right half-transparent
    grey_alpha[:, SIZE // 2:, 1] = 128
    _save(root, "modes/grey_alpha.png", Image.fromarray(grey_alpha))
    half = np.round(40 * 128 / 255 + 255 * (1 - 128 / 255))
    expected = np.full((SIZE, SIZE, 3), 40, np.uint8)
    expected[:, SIZE // 2:] = half
    readable["modes/grey_alpha.png"] = expected
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[...] = (255, 0, 0, 51)
    _save(root, "modes/rgba.png", Image.fromarray(rgba))
    readable["modes/rgba.png"] = np.full((SIZE, SIZE, 3), (255, 204, 204), np.uint8)
    bilevel = Image.new("1", (SIZE, SIZE), 0)
    bilevel.paste(1, (0, 0, SIZE // 2, SIZE))
    _save(root, "modes/bilevel.png", bilevel)
    expected = np.zeros((SIZE, SIZE, 3), np.uint8)
    expected[:, : SIZE // 2] = 255
    readable["modes/bilevel.png"] = expected

    # Animations: the first frame.
    frames = [Image.new("RGB", (SIZE, SIZE), colour) for colour in ((0, 0, 255), (0, 255, 0), (255, 0, 0))]
    _save(root, "animated/three_frames.gif", frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    readable["animated/three_frames.gif"] = np.full((SIZE, SIZE, 3), (0, 0, 255), np.uint8)
    _save(root, "animated/three_frames.webp", frames[0], save_all=True, append_images=frames[1:], duration=100,
          lossless=True)
    readable["animated/three_frames.webp"] = np.full((SIZE, SIZE, 3), (0, 0, 255), np.uint8)

    # File-system oddities.
    _save(root, "files/caf\udce9.png", Image.fromarray(upright))  # a Latin-1 name: not UTF-8
    readable["files/caf\udce9.png"] = upright
    with open(os.path.join(root, "files", "._caf\udce9.png"), "wb") as handle:  # macOS AppleDouble
        handle.write(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    skipped["files/._caf\udce9.png"] = "hidden"
    with open(os.path.join(root, "files", ".DS_Store"), "wb") as handle:
        handle.write(b"\x00\x00\x00\x01Bud1")
    skipped["files/.DS_Store"] = "hidden"
    _save(root, "files/.thumbnails/small.png", Image.fromarray(upright))
    skipped["files/.thumbnails"] = "hidden"
    open(os.path.join(root, "files", "empty.jpg"), "wb").close()
    skipped["files/empty.jpg"] = "empty file"
    with open(os.path.join(root, "files", "truncated.jpg"), "wb") as handle:
        path = _save(root, "files/whole.jpg", Image.fromarray(upright), quality=95)
        handle.write(open(path, "rb").read()[:200])
        os.remove(path)
    skipped["files/truncated.jpg"] = "truncated"
    with open(os.path.join(root, "files", "notes.png"), "w") as handle:
        handle.write("not an image, despite its name")
    skipped["files/notes.png"] = "not an image"
    os.symlink("nowhere.png", os.path.join(root, "files", "dangling.png"))
    skipped["files/dangling.png"] = "cannot be read"
    os.mkfifo(os.path.join(root, "files", "pipe.png"))  # reading it would block forever
    skipped["files/pipe.png"] = "not a regular file"
    os.symlink("..", os.path.join(root, "files", "up"))  # a loop: files/up/files/up/...
    skipped["files/up"] = "a link loop"
    return readable, skipped


def _candidates(image):
    """Every flip and rotation of `image` (one is the stored form for each orientation)."""
    for flipped in (image, image[:, ::-1]):
        for turns in range(4):
            yield np.rot90(flipped, k=turns)


if __name__ == "__main__":
    readable, skipped = write_oddities(sys.argv[1])
    for name in sorted(readable):
        print(f"read {os.fsencode(name).decode('utf-8', 'backslashreplace')}")
    for name, why in sorted(skipped.items()):
        print(f"skip {os.fsencode(name).decode('utf-8', 'backslashreplace')}: {why}")
