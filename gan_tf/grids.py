"""Pictures of many samples: images tiled into one grid, and written as PNG files."""

import math
import os

import numpy as np


def image_grid(images, value_range, columns):
    """Tiles images into one grid image with pixel values in [0, 1].

    Args:
        images: `[N, H, W, C]` in `value_range`.
        value_range: `(low, high)` of the images.
        columns: images per row; the last row is padded with black.

    Returns:
        `float32 [rows * H, columns * W, C]` in [0, 1].
    """
    images = np.asarray(images, dtype=np.float32)
    low, high = value_range
    images = np.clip((images - low) / (high - low), 0.0, 1.0)
    count, height, width, channels = images.shape
    rows = max(1, math.ceil(count / columns))
    padded = np.zeros((rows * columns, height, width, channels), dtype=np.float32)
    padded[:count] = images
    grid = padded.reshape(rows, columns, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * height, columns * width, channels)


def grouped_cells(groups, rows, columns, blank):
    """The `rows * columns` cells of a preview whose items each fill k adjacent cells: `groups` is
    k arrays `[n, H, W, C]` (item i shows `groups[0][i], ..., groups[k-1][i]` left to right), each
    row takes `columns // k` items in turn, and `blank` fills the rest of the row."""
    per_row = max(1, columns // len(groups))
    cells = []
    for row in range(rows):
        items = [group[row * per_row + i] for i in range(per_row) for group in groups]
        cells.extend((items + [blank] * columns)[:columns])
    return np.stack(cells)


def save_image(path, grid):
    """Writes a `[H, W, C]` image in [0, 1] (C = 1 or 3) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if grid.shape[-1] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        plt.imsave(path, grid)
