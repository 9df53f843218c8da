"""Data: every kind of `--dataset` value opened as a `DataSource`, a dataset ready to train on.

`open_source(spec)` reads any of them (`specs.SPEC_KINDS` lists the kinds): built-in images,
folders, TFDS (`images`), image pairs and domains (`pairs`), captioned images (`captions`),
melodies (`melodies`, with `music` for bars, chords, MIDI and audio). A source says what it is
(`DatasetInfo`: image shape, classes, modality, held-out examples) and serves `tf.data`
batches, in memory (`pipeline`) or streaming. Labelled data bring their own classifier
(`classifiers`), which the metrics and SRGAN use. Nothing here imports models, metrics,
serving or training.
"""

from gan_tf.data.builtin import DATASETS, dataset_info, load_arrays
from gan_tf.data.info import DatasetError, DatasetInfo, DatasetUnavailableError, Examples
from gan_tf.data.pipeline import index_batches, make_dataset
from gan_tf.data.source import DataSource, parse_image_size
from gan_tf.data.specs import SPEC_KINDS, check_spec, load_dataset, open_source

__all__ = ["DATASETS", "SPEC_KINDS", "DataSource", "DatasetError", "DatasetInfo", "DatasetUnavailableError",
           "Examples", "check_spec", "dataset_info", "index_batches", "load_arrays", "load_dataset", "make_dataset",
           "open_source", "parse_image_size"]
