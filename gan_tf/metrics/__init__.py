"""Quality metrics: `image_metrics` (FID, KID, precision/recall, sharpness, mode coverage, ...:
pure functions of features and probabilities), `evaluation` (an `Evaluator` that scores samples
against real data on the data's own classifier, and `make_evaluator`, the judge of any data by
their modality), `melody_metrics` (scale consistency, chord tones, ... of melodies)."""
