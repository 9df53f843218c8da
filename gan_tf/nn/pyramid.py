"""The Laplacian pyramid LAPGAN generates along, as small pure functions.

`downsample` halves an image by averaging each 2x2 block; `upsample` doubles it by bilinear
interpolation. The Gaussian pyramid of an image `I` with K levels is `I_{K-1} = I` and
`I_{k-1} = downsample(I_k)` (index 0 is the coarsest). Its Laplacian pyramid keeps the coarsest
image `I_0` and the band-pass residuals `h_k = I_k - upsample(I_{k-1})` for k = 1 .. K-1, and
`reconstruct` inverts it exactly, `I_k = upsample(I_{k-1}) + h_k`, whatever `downsample` and
`upsample` are: LAPGAN's sampler runs that recursion on generated residuals.

Reference:
    Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a Laplacian
    Pyramid of Adversarial Networks", section 3.1, https://arxiv.org/abs/1506.05751 (after
    Burt & Adelson 1983, "The Laplacian Pyramid as a Compact Image Code").
"""

from keras import ops

# LAPGAN's default pyramid stops halving once the coarsest side is at most this many pixels
# (28 -> 14, 32 -> 16, 64 -> 32 -> 16). Chosen by measurement (bench/lapgan_levels.py, 10 epochs on
# mnist_5k, docs/results/coarse_to_fine.md): with a 7x7 coarsest level, the 7 -> 14 level was the
# weak one (the real 7x7 images refined by the trained finer levels: FID 141.9; the real 14x14
# refined by the last level: 13.1), and a 14x14 coarsest level took the samples' FID from 205.8
# to 79.3 at the same settings. The paper's CIFAR-10 pyramid starts at 8x8 (32 -> 16 -> 8).
COARSEST_SIDE = 16


def downsample(images):
    """`[B, H, W, C]` -> `[B, H/2, W/2, C]`: the mean of each 2x2 block (H and W even)."""
    return ops.average_pool(images, pool_size=2, strides=2, padding="valid")


def upsample(images):
    """`[B, H, W, C]` -> `[B, 2H, 2W, C]` by bilinear interpolation (half-pixel centres)."""
    height, width = images.shape[1], images.shape[2]
    return ops.image.resize(images, (2 * height, 2 * width), interpolation="bilinear")


def default_levels(image_shape):
    """Levels of the pyramid for `(H, W, C)`: halve while both sides are even and the longer side
    is above `COARSEST_SIDE` (2 for 28x28 and 32x32, 3 for 64x64, 4 for 128x128)."""
    height, width = int(image_shape[0]), int(image_shape[1])
    levels = 1
    while height % 2 == 0 and width % 2 == 0 and max(height, width) > COARSEST_SIDE:
        height, width, levels = height // 2, width // 2, levels + 1
    return levels


def check_levels(image_shape, levels):
    """`levels` as an int, or ValueError when `image_shape`'s sides cannot be halved `levels - 1`
    times (each halving needs even sides)."""
    if int(levels) != levels or levels < 1:
        raise ValueError(f"`levels` must be a positive integer. Received: levels={levels}")
    levels = int(levels)
    factor = 2 ** (levels - 1)
    height, width = int(image_shape[0]), int(image_shape[1])
    if height % factor or width % factor:
        raise ValueError(
            f"A pyramid of {levels} levels halves the image {levels - 1} times, so its sides must be "
            f"divisible by {factor}. Received: image_shape={tuple(image_shape)} (default for it: "
            f"levels={default_levels(image_shape)})"
        )
    return levels


def level_shapes(image_shape, levels):
    """`[(H_k, W_k, C)]`, coarsest first: the shape of each level of the pyramid."""
    height, width, channels = (int(d) for d in image_shape)
    return [(height >> (levels - 1 - k), width >> (levels - 1 - k), channels) for k in range(levels)]


def gaussian_pyramid(images, levels):
    """`[I_0, ..., I_{levels-1}]`, coarsest first; the last is `images` itself."""
    pyramid = [images]
    for _ in range(levels - 1):
        pyramid.insert(0, downsample(pyramid[0]))
    return pyramid


def laplacian_pyramid(images, levels):
    """`(I_0, [h_1, ..., h_{levels-1}])`: the coarsest image and the band-pass residuals
    `h_k = I_k - upsample(I_{k-1})`, coarse to fine."""
    pyramid = gaussian_pyramid(images, levels)
    return pyramid[0], [pyramid[k] - upsample(pyramid[k - 1]) for k in range(1, levels)]


def reconstruct(coarsest, residuals):
    """The image whose Laplacian pyramid is `(coarsest, residuals)`: `I_k = upsample(I_{k-1}) + h_k`."""
    image = coarsest
    for residual in residuals:
        image = upsample(image) + residual
    return image
