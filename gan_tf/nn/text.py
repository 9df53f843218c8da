"""Caption embeddings for text-to-image models: a text encoder trained jointly with an image
encoder so that a caption's embedding carries what it says about the image.

* `caption_vectorizer(captions)`: a `keras.layers.TextVectorization` adapted to the training
  captions (lower-cased, punctuation stripped, word ids padded to `SEQUENCE_LENGTH`); inside the
  text encoder, so the encoder (and an export holding it) takes caption strings.
* `text_encoder`: strings -> word ids -> embeddings -> a bidirectional GRU -> Dense(dim).
* `image_encoder`: a small strided CNN -> Dense(dim).
* `JointEmbedding`: both encoders, trained by `fit` on `((images, captions), labels)` batches with
  `losses.symmetric_matching_loss`, where caption i counts as describing image j when the two
  examples carry the same caption text (so "a dark pullover" describes every image it was written
  for). Its `match_accuracy` tracker is the fraction of captions whose best-scoring image in the
  batch is one they describe.

Reference:
    Reed, Akata, Lee & Schiele 2016, "Learning Deep Representations of Fine-Grained Visual
    Descriptions", https://arxiv.org/abs/1605.05395 (the text encoder StackGAN's embeddings come
    from; theirs is a char-CNN-RNN, this one a word-level GRU).
"""

import keras
import tensorflow as tf
from keras import ops

from gan_tf.nn import losses

# Word ids per caption (longer captions are cut, shorter ones padded with 0).
SEQUENCE_LENGTH = 16
# Vocabulary cap (the most frequent words; the rest map to the out-of-vocabulary id 1).
MAX_TOKENS = 5000


def caption_vectorizer(captions, max_tokens=MAX_TOKENS, sequence_length=SEQUENCE_LENGTH, vocabulary=None):
    """A `TextVectorization` from strings to int word ids `[N, sequence_length]`, adapted to
    `captions` (or given its `vocabulary`, as a saved model restores it)."""
    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens, output_sequence_length=sequence_length,
                                                vocabulary=vocabulary, name="caption_words")
    if vocabulary is None:
        vectorizer.adapt(tf.constant(list(captions)))
    return vectorizer


def text_encoder(vectorizer, embedding_dim=64, width=64):
    """`tf.string [N] -> float32 [N, embedding_dim]`: word ids, word embeddings of `width`, a
    bidirectional GRU of `width` units each way, Dense(embedding_dim)."""
    captions = keras.Input((), dtype="string", name="captions")
    words = vectorizer(captions)
    x = keras.layers.Embedding(vectorizer.vocabulary_size(), width, mask_zero=True, name="word_embedding")(words)
    x = keras.layers.Bidirectional(keras.layers.GRU(width), name="caption_gru")(x)
    return keras.Model(captions, keras.layers.Dense(embedding_dim, name="caption_embedding")(x), name="text_encoder")


def image_encoder(image_shape, embedding_dim=64, width=32):
    """`images -> float32 [N, embedding_dim]`: stride-2 3x3 convolutions of `width`, `2 width`,
    `4 width` channels (LeakyReLU), global average pooling, Dense(embedding_dim)."""
    images = keras.Input(image_shape, name="images")
    x = images
    for multiplier in (1, 2, 4):
        x = keras.layers.Conv2D(multiplier * width, 3, strides=2, padding="same")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, keras.layers.Dense(embedding_dim, name="image_embedding")(x), name="image_encoder")


def same_caption(captions):
    """`bool [B, B]`: whether captions i and j are the same text (the matching loss's positives)."""
    return ops.equal(ops.expand_dims(captions, 1), ops.expand_dims(captions, 0))


def matching_loss(text_encoder, image_encoder, images, captions, temperature, training=True):
    """`(per-example symmetric matching loss, per-caption hit)` of a batch: a hit when the image
    scoring highest for a caption is one it describes (`same_caption`)."""
    positives = same_caption(captions)
    text = text_encoder(captions, training=training)
    image = image_encoder(images, training=training)
    per_example = losses.symmetric_matching_loss(text, image, positives, temperature)
    best = ops.argmax(ops.matmul(ops.normalize(text), ops.transpose(ops.normalize(image))), axis=1)
    hits = ops.take_along_axis(ops.cast(positives, "float32"), ops.expand_dims(best, 1), axis=1)[:, 0]
    return per_example, hits


@keras.saving.register_keras_serializable(package="gan_tf")
class JointEmbedding(keras.Model):
    """A text encoder and an image encoder trained together by the symmetric matching loss.

    `train_step` on `((images, captions), labels)`: embeds both, takes
    `symmetric_matching_loss(text, image, same_caption(captions), temperature)` and updates both
    encoders, then the trackers `match_loss` and `match_accuracy`.

    Args:
        text_encoder: strings -> embeddings (`text_encoder(...)`).
        image_encoder: images -> embeddings of the same size.
        temperature: the softmax temperature of the matching scores.
    """

    def __init__(self, text_encoder, image_encoder, temperature=0.1, **kwargs):
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"`temperature` must be positive. Received: temperature={temperature}")
        self.text_encoder = text_encoder
        self.image_encoder = image_encoder
        self.temperature = float(temperature)
        self.loss_tracker = keras.metrics.Mean(name="match_loss")
        self.accuracy_tracker = keras.metrics.Mean(name="match_accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, inputs, training=False):
        images, captions = inputs
        return self.text_encoder(captions, training=training), self.image_encoder(images, training=training)

    def train_step(self, data):
        (images, captions), _ = data
        with tf.GradientTape() as tape:
            per_example, hits = matching_loss(self.text_encoder, self.image_encoder, images, captions, self.temperature)
            loss = tf.nn.compute_average_loss(per_example)
        variables = self.text_encoder.trainable_variables + self.image_encoder.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.loss_tracker.update_state(per_example)
        self.accuracy_tracker.update_state(hits)
        return {metric.name: metric.result() for metric in self.metrics}
