import keras
import numpy as np
import pytest

from conftest import GANS
from gan_tf import MODELS
from gan_tf.nn import networks
from gan_tf.nn.layers import SelfAttention2D

# Parameter counts (G, D) at 28x28x1 with each model's defaults: the networks as they were
# before they were grown by resolution (the tutorial's), so a change here is a change of model.
PARAMETERS_AT_28 = {
    "mlp_gan": (114064, 100609),
    "dcgan": (2330945, 212865),
    "cgan": (2456385, 228865),
    "self_conditioned_gan": (2581825, 244865),  # CGAN's networks, 20 clusters for 10 classes
    "wgan_gp": (2330945, 212865),
    "sngan": (2330945, 213058),
    "acgan": (2456385, 275595),
    "sagan": (2346074, 215195),
    "biggan": (455266, 207746),
    "lapgan": (2842018, 295234),  # 14 -> 28 since 2026-12-06 (7 -> 14 -> 28: 924,259 and 501,251)
}


def build(name, image_shape, **kwargs):
    model_class = MODELS[name]
    if model_class.conditional:
        kwargs["num_classes"] = 10
    return model_class(image_shape=image_shape, seed=0, **kwargs)


# (encoder, decoder) parameters of the VAEs at 28x28x1: the DCGAN trunk and generator, z of 32.
VAE_PARAMETERS_AT_28 = {"vae": (608064, 1477953), "cvae": (624064, 1603393)}


# All parameters of the PixelCNNs at 28x28x1 (F = 32, 5 gated layers, k = 5).
# The conditional one adds a per-class bias to each layer's gates (5 x 11 x 128) and a per-class
# 28x28x4 map with a 1x1 link to each layer's gates (11 x 28 x 28 x 4 + 5 x (4 x 128 + 128)):
# 11 rows, the 10 classes' and the "no class" row that label dropout trains.
PIXELCNN_PARAMETERS_AT_28 = {"pixelcnn": 184832, "conditional_pixelcnn": 184832 + 5 * 11 * 128 + 11 * 3136 + 5 * 640}
# PixelRNN at 28x28x1 (F = 32, 2 layers), by hand: the mask-A 7x7 as 3x7 (+bias) and 1x3, 704 + 96;
# per layer a residual 1x1 (1,056) and, Row LSTM, input 1x2 to 4F (8,320) and state 1x3 (12,288),
# or, Diagonal BiLSTM, twice input 1x1 (4,224) and state 2x1 (8,192); the head 1,056 + 8,448.
PIXELRNN_PARAMETERS_AT_28 = {"diagonal_bilstm": 800 + 2 * (1056 + 2 * (4224 + 8192)) + 9504,  # 62,080
                             "row_lstm": 800 + 2 * (1056 + 8320 + 12288) + 9504}  # 53,632


# (G, D) parameters (one direction's, for CycleGAN) of the image-to-image models at 32x32x1 ->
# 32x32x1 with their defaults (the papers' widths: a 5-level U-Net; 6 residual blocks; 3-level
# PatchGANs).
TRANSLATION_PARAMETERS_AT_32 = {"pix2pix": (16657217, 2766401), "cyclegan": (7828865, 2763585)}
# SRGAN x4 at 28x28x1 (7x7 inputs): SRResNet with 16 blocks of 64 channels, the paper's D.
SRGAN_PARAMETERS_AT_28 = {"srgan": (1532033, 6788993)}
# MidiNet on bars of 16 steps x 24 pitches x (roll, onsets): the authors' layer sizes (G with its
# conditioner CNN), with the progression's 12 values beside the chord's 13 (the authors': 13 alone).
MIDINET_PARAMETERS = {"midinet": (545394, 300474)}
MIDINET_AUTHORS_PARAMETERS = (520242, 275838)
# StackGAN at 28x28x1 with its defaults: (Stage-I G, Stage-II G, Stage-I D, Stage-II D) (the text
# encoder's size follows the data's vocabulary).
STACKGAN_PARAMETERS_AT_28 = {"stackgan": (3280193, 1112353, 176001, 769281)}


def test_every_model_is_pinned():
    pinned = set(PARAMETERS_AT_28) | set(VAE_PARAMETERS_AT_28) | set(PIXELCNN_PARAMETERS_AT_28)
    pinned |= set(TRANSLATION_PARAMETERS_AT_32) | set(SRGAN_PARAMETERS_AT_28) | set(MIDINET_PARAMETERS)
    pinned |= set(STACKGAN_PARAMETERS_AT_28) | {"pixelrnn"}
    assert pinned == set(MODELS)


def test_stackgan_parameter_counts():
    model = MODELS["stackgan"](seed=0)
    networks = (model.stage1_generator, model.stage2_generator, model.stage1_discriminator, model.stage2_discriminator)
    assert tuple(network.count_params() for network in networks) == STACKGAN_PARAMETERS_AT_28["stackgan"]


def test_midinet_parameter_counts():
    model = MODELS["midinet"](seed=0)
    assert (model.generator.count_params(), model.discriminator.count_params()) == MIDINET_PARAMETERS["midinet"]
    authors = MODELS["midinet"](progression=False, seed=0)
    assert (authors.generator.count_params(), authors.discriminator.count_params()) == MIDINET_AUTHORS_PARAMETERS


def test_srgan_parameter_counts_at_28():
    model = MODELS["srgan"](image_shape=(28, 28, 1), seed=0)
    assert (model.generator.count_params(), model.discriminator.count_params()) == SRGAN_PARAMETERS_AT_28["srgan"]


@pytest.mark.parametrize("name", list(TRANSLATION_PARAMETERS_AT_32))
def test_translation_parameter_counts_at_32(name):
    model = MODELS[name](source_shape=(32, 32, 1), image_shape=(32, 32, 1), seed=0)
    generator, discriminator = (model.generator, model.discriminator) if name == "pix2pix" else (
        model.generator_ab, model.discriminator_b)
    assert (generator.count_params(), discriminator.count_params()) == TRANSLATION_PARAMETERS_AT_32[name]


@pytest.mark.parametrize("name", list(PIXELCNN_PARAMETERS_AT_28))
def test_pixelcnn_parameter_counts_at_28(name):
    assert build(name, (28, 28, 1)).count_params() == PIXELCNN_PARAMETERS_AT_28[name]


@pytest.mark.parametrize("recurrence", list(PIXELRNN_PARAMETERS_AT_28))
def test_pixelrnn_parameter_counts_at_28(recurrence):
    assert build("pixelrnn", (28, 28, 1), recurrence=recurrence).count_params() == PIXELRNN_PARAMETERS_AT_28[recurrence]


@pytest.mark.parametrize("name", list(VAE_PARAMETERS_AT_28))
def test_vae_parameter_counts_at_28(name):
    vae = build(name, (28, 28, 1))
    assert (vae.encoder.count_params(), vae.decoder.count_params()) == VAE_PARAMETERS_AT_28[name]


@pytest.mark.parametrize("name", list(GANS))
def test_parameter_counts_at_28_are_the_tutorial_networks(name):
    gan = build(name, (28, 28, 1))
    assert (gan.generator.count_params(), gan.discriminator.count_params()) == PARAMETERS_AT_28[name]


@pytest.mark.parametrize(
    "image_shape, upsamplings, base",
    [((28, 28, 1), 2, (7, 7)), ((32, 32, 3), 3, (4, 4)), ((64, 64, 3), 4, (4, 4)), ((128, 128, 3), 5, (4, 4)),
     ((8, 8, 1), 2, (2, 2)), ((48, 64, 3), 3, (6, 8)), ((36, 36, 3), 2, (9, 9))],
)
def test_upsampling_plan(image_shape, upsamplings, base):
    assert networks.num_upsamplings(image_shape) == upsamplings
    assert networks.base_size(image_shape) == base


def test_attention_goes_on_maps_of_side_at_most_32():
    assert [networks.attention_side((s, s, 3)) for s in (28, 32, 64, 128)] == [14, 16, 32, 32]


@pytest.mark.parametrize("size", [32, 64, 128])
def test_dcgan_grows_one_block_per_doubling_and_halves_channels(size):
    gan = build("dcgan", (size, size, 3))
    count = int(np.log2(size // 4))
    transposed = [l for l in gan.generator.layers if isinstance(l, keras.layers.Conv2DTranspose)]
    assert [l.strides[0] for l in transposed] == [1] + [2] * count
    expected = [min(64 * 2 ** (count - 1 - k), 512) for k in range(count)] + [3]
    assert [l.filters for l in transposed] == expected
    assert gan.generator.layers[1].units == 4 * 4 * min(64 * 2**count, 512)
    conv = [l for l in gan.discriminator.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.filters for l in conv] == [min(64 * 2**k, 512) for k in range(count)]
    assert gan.discriminator.get_layer("logit").kernel.shape == (4 * 4 * conv[-1].filters, 1)


# LAPGAN's D judges a pyramid, not an image: tests/test_lapgan.py checks it at these sizes.
@pytest.mark.parametrize("name", [n for n in GANS if n not in ("mlp_gan", "lapgan")])
@pytest.mark.parametrize("size", [32, 64, 128])
def test_scaled_networks_make_and_judge_images_of_the_size(name, size):
    kwargs = {} if name == "biggan" else {"width": 8}
    gan = build(name, (size, size, 3), **({"width": 4} if name == "biggan" else kwargs))
    images = gan.generate(labels=[0, 1]) if gan.conditional else gan.generate(2)
    assert images.shape == (2, size, size, 3)
    inputs = [images, np.array([0, 1], "int32")] if len(gan.discriminator.inputs) == 2 else images
    outputs = gan.discriminator(inputs)
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    assert tuple(first.shape) == (2, 1)
    attention = [l for network in (gan.generator, gan.discriminator) for l in network.layers
                 if isinstance(l, SelfAttention2D)]
    for layer in attention:  # SAGAN: on maps of side attention_side
        assert layer.input.shape[1] == networks.attention_side((size, size, 3))
    assert len(attention) == (2 if name == "sagan" else 0)


def test_width_scales_the_channels_and_round_trips():
    gan = build("dcgan", (64, 64, 3), width=16)
    conv = [l for l in gan.discriminator.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.filters for l in conv] == [16, 32, 64, 128]
    assert MODELS["dcgan"].from_config(gan.get_config()).width == 16
    with pytest.raises(ValueError, match="width.*Received: width=0"):
        build("dcgan", (28, 28, 1), width=0)


def test_biggan_splits_z_into_one_chunk_per_resolution():
    from gan_tf.models.biggan import latent_chunks

    assert [latent_chunks((s, s, 3)) for s in (28, 32, 64)] == [3, 4, 5]
    with pytest.raises(ValueError, match="at least 5"):
        build("biggan", (64, 64, 3), latent_dim=4)


@pytest.mark.parametrize("size, parameters", [(32, (5159363, 1033345)), (64, (11715011, 4314753)),
                                              (128, (18270659, 10868865))])
def test_dcgan_parameter_counts_by_resolution(size, parameters):
    # The README's table of grown networks; at 64x64 the DCGAN paper's layout with channels capped at 512.
    gan = build("dcgan", (size, size, 3))
    assert (gan.generator.count_params(), gan.discriminator.count_params()) == parameters
