"""Image files read as a viewer shows them (`gan_tf.data.image_files`): a folder of real
oddities written at test time (`image_oddities.py`), each case checked by its pixels."""

import logging
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from gan_tf.data import DatasetError, open_source
from gan_tf.data.image_files import ImageFileError, _as_8_bit, find_image_files, read_image
from image_oddities import SHOWN, quadrants, write_oddities

# JPEG keeps solid 8x8 blocks within a step or two of each value (q95, no chroma subsampling).
JPEG_TOLERANCE = 3


@pytest.fixture(scope="module")
def oddities(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("oddities"))
    readable, skipped = write_oddities(root)
    return root, readable, skipped


def _close(actual, expected, name):
    """Whether `actual` has `expected`'s shape and pixels (JPEGs within `JPEG_TOLERANCE`)."""
    tolerance = JPEG_TOLERANCE if name.endswith(".jpg") else 0
    return actual.shape == expected.shape and np.abs(actual.astype(int) - expected.astype(int)).max() <= tolerance


def test_the_eight_exif_orientations_follow_the_standard():
    """The stand-in's table is the Exif standard's, independent of Pillow: 6 turns a stored
    landscape clockwise, 8 counter-clockwise, 2 and 4 mirror, 5 and 7 mirror across a diagonal."""
    stored = np.arange(6).reshape(2, 3)  # [[0 1 2] [3 4 5]]
    assert SHOWN[6](stored).tolist() == [[3, 0], [4, 1], [5, 2]]
    assert SHOWN[8](stored).tolist() == [[2, 5], [1, 4], [0, 3]]
    assert SHOWN[2](stored).tolist() == [[2, 1, 0], [5, 4, 3]]
    assert SHOWN[4](stored).tolist() == [[3, 4, 5], [0, 1, 2]]
    assert SHOWN[5](stored).tolist() == stored.T.tolist()
    assert SHOWN[7](stored).tolist() == [[5, 2], [4, 1], [3, 0]]


def test_every_oddity_reads_as_a_viewer_shows_it(oddities):
    root, readable, unused_skipped = oddities
    wrong = [name for name, expected in readable.items() if not _close(read_image(os.path.join(root, name), 3), expected, name)]
    assert wrong == []


@pytest.mark.parametrize("orientation", range(1, 9))
def test_an_exif_orientation_is_applied(oddities, orientation):
    root, unused_readable, unused_skipped = oddities
    for extension in ("png", "jpg"):
        name = f"orientation/exif_{orientation}.{extension}"
        assert _close(read_image(os.path.join(root, name)), quadrants(), name), name


def test_a_phone_portrait_stored_landscape_trains_upright(oddities):
    root, readable, unused_skipped = oddities
    path = os.path.join(root, "orientation/portrait_6.jpg")
    with Image.open(path) as stored:
        assert stored.size == (32, 16)  # stored 32 wide, 16 high
    image = read_image(path)
    assert image.shape == (32, 16, 3)  # shown 32 high
    assert _close(image, readable["orientation/portrait_6.jpg"], "portrait.jpg")


def test_modes_and_transparency_follow_the_documented_rule(oddities):
    root, unused_readable, unused_skipped = oddities
    assert read_image(os.path.join(root, "modes/grey16.png"))[0, :4, 0].tolist() == [0, 100, 255, 128]
    palette = read_image(os.path.join(root, "modes/palette_transparent.png"))
    assert palette[0, 0].tolist() == [0, 0, 255] and palette[-1, 0].tolist() == [255, 255, 255]  # over white
    grey_alpha = read_image(os.path.join(root, "modes/grey_alpha.png"))
    assert grey_alpha.shape == (16, 16, 1)  # greyscale stays one channel
    assert grey_alpha[0, 0, 0] == 40 and grey_alpha[0, -1, 0] == round(40 * 128 / 255 + 255 * 127 / 255)
    assert read_image(os.path.join(root, "modes/rgba.png"))[0, 0].tolist() == [255, 204, 204]
    assert read_image(os.path.join(root, "modes/bilevel.png"), 1)[0, [0, -1], 0].tolist() == [255, 0]
    red = read_image(os.path.join(root, "modes/cmyk.jpg"))
    assert np.abs(red.astype(int) - [255, 0, 0]).max() <= JPEG_TOLERANCE
    with Image.open(os.path.join(root, "modes/ycck.jpg")) as ycck:
        assert ycck.mode == "CMYK" and ycck.info["adobe_transform"] == 2  # a YCCK file, as Photoshop writes
    red_from_ycck = read_image(os.path.join(root, "modes/ycck.jpg"))
    assert np.abs(red_from_ycck.astype(int) - [255, 0, 0]).max() <= JPEG_TOLERANCE
    # Greyscale from colour by the luma weights, rounded: red 0.299 * 255 = 76.2.
    assert abs(int(read_image(os.path.join(root, "modes/cmyk.jpg"), 1)[0, 0, 0]) - 76) <= JPEG_TOLERANCE


def test_float_and_32_bit_greyscale_scale_by_their_documented_ranges():
    floats = Image.fromarray(np.array([[0.0, 0.5, 1.0, 2.0, -1.0]], np.float32))  # mode F: [0, 1]
    assert floats.mode == "F" and _as_8_bit(floats).tolist() == [[0, 128, 255, 255, 0]]
    integers = Image.fromarray(np.array([[0, 257, 65535, 70000]], np.int32))  # mode I: 16-bit range
    assert integers.mode == "I" and _as_8_bit(integers).tolist() == [[0, 1, 255, 255]]


def test_animations_give_their_first_frame(oddities):
    root, unused_readable, unused_skipped = oddities
    for name in ("animated/three_frames.gif", "animated/three_frames.webp"):
        with Image.open(os.path.join(root, name)) as image:
            assert image.n_frames == 3
        assert read_image(os.path.join(root, name))[0, 0].tolist() == [0, 0, 255], name


def test_files_that_misbehave_say_why(oddities):
    root, unused_readable, skipped = oddities
    for name, why in skipped.items():
        if why in ("hidden", "a link loop"):
            continue  # never read: the folder scan leaves them out
        with pytest.raises(ImageFileError, match=why):
            read_image(os.path.join(root, name))


def test_the_scan_skips_hidden_files_and_ends_on_a_link_loop(oddities):
    root, readable, skipped = oddities
    scan = find_image_files(root)
    found = {os.path.relpath(path, root) for path in scan.images}
    expected_files = set(readable) | {n for n, why in skipped.items() if why not in ("hidden", "a link loop")}
    assert found == expected_files  # each once: nothing reached again through files/up
    assert {os.path.relpath(path, root) for path in scan.hidden} == {n for n, why in skipped.items() if why == "hidden"}
    assert [os.path.relpath(path, root) for path in scan.loops] == ["files/up"]


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_folder_of_oddities_trains_on_exactly_the_readable_images(oddities, caplog, in_memory):
    """Both paths give the same pixels as the reader, fitted to the size, for every readable
    file, and name what they skipped."""
    root, readable, skipped = oddities
    with caplog.at_level(logging.WARNING):
        source = open_source(f"folder:{root}", image_size=16, in_memory=in_memory)
    assert source.num_examples == len(readable)
    assert "skipped 5 image file(s) that do not decode" in caplog.text and "empty.jpg (empty file" in caplog.text
    assert "skipped 3 hidden file(s)" in caplog.text and "a link loop" in caplog.text
    images, labels = source.arrays()
    assert len(images) == len(readable)
    classes = source.info.class_names
    assert classes == ("animated", "files", "modes", "orientation")
    expected = {}
    for name, pixels in readable.items():
        fitted = pixels if pixels.shape[:2] == (16, 16) else pixels[8:24]  # the portrait: its centre 16 x 16
        expected.setdefault(classes.index(name.split("/")[0]), []).append(fitted)
    for label, group in expected.items():
        got = images[labels == label]
        assert len(got) == len(group)
        for image in group:  # each expected image is among its class's (order is the stream's)
            assert min(np.abs(g.astype(int) - image.astype(int)).max() for g in got) <= JPEG_TOLERANCE + 1


def test_training_and_a_single_file_agree_pixel_for_pixel(oddities, tmp_path):
    """The same reader and resize for the in-memory folder, the streaming folder and
    generate.py --input: a rotated JPEG fitted to 12 x 12 gives identical pixels."""
    import generate

    root, unused_readable, unused_skipped = oddities
    folder = tmp_path / "one" / "photos"
    folder.mkdir(parents=True)
    for orientation in (1, 6, 7):
        shutil.copy(os.path.join(root, f"orientation/exif_{orientation}.jpg"), folder)
    shutil.copy(os.path.join(root, "orientation/portrait_6.jpg"), folder)
    memory = open_source(f"folder:{folder.parent}", image_size=12, in_memory=True).arrays()[0]
    streamed = open_source(f"folder:{folder.parent}", image_size=12, in_memory=False).arrays()[0]
    names, single, unused_fitted = generate._read_inputs(str(folder), (12, 12, 3))
    assert sorted(names) == names  # sorted file order, as the folder scan
    memory_by_bytes = sorted(image.tobytes() for image in memory)
    assert memory_by_bytes == sorted(image.tobytes() for image in streamed)
    assert memory_by_bytes == sorted(image.tobytes() for image in single)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    path = str(tmp_path / "big.jpg")
    Image.fromarray(np.tile(quadrants(), (150, 200, 1))).save(path, quality=90)  # 2,400 high x 3,200 wide
    assert read_image(path).shape == (2400, 3200, 3)
    small = read_image(path, size=(64, 64))
    assert small.shape == (300, 400, 3)  # 1/8 scale: the smallest still covering 64 x 64
    assert read_image(path, size=(400, 400)).shape == (600, 800, 3)  # 1/4: 1/8 would be below 400


def test_a_file_above_the_pixel_limit_is_skipped_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (40, 30), (10, 20, 30)).save(folder / "large.png")
    Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "small.png")
    with pytest.raises(ImageFileError, match="40x30 pixels, above the limit of 1,000"):
        read_image(str(folder / "large.png"), max_pixels=1000)
    with caplog.at_level(logging.WARNING):
        source = open_source(f"folder:{folder}", image_size=8, max_image_pixels=1000)
    assert source.num_examples == 1 and "large.png (40x30 pixels, above the limit" in caplog.text
    with pytest.raises(DatasetError, match="None of the 2 image files .* decodes; the first: .*above the limit"):
        open_source(f"folder:{folder}", image_size=8, max_image_pixels=10)


def test_a_file_that_vanishes_or_changes_mid_run_is_skipped_and_no_batch_is_lost(tmp_path, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(6):
        Image.new("L", (8, 8), 40 * index).save(folder / f"{index}.png")
    source = open_source(f"folder:{folder}", in_memory=False)
    os.remove(folder / "2.png")
    (folder / "4.png").write_bytes(b"replaced by something else")
    with caplog.at_level(logging.WARNING):
        batches = list(source.dataset(batch_size=4, value_range=(0, 255), seed=0, repeat=True).take(5))
    assert [tuple(images.shape) for images, labels in batches] == [(4, 8, 8, 1)] * 5  # every step full
    seen = {int(v) for images, labels in batches for v in np.unique(images.numpy())}
    assert seen == {0, 40, 120, 200}  # the four files still there, the other two never
    assert caplog.text.count("while reading the data") == 2  # once per file, not once per epoch
    assert "2.png" in caplog.text and "4.png" in caplog.text
