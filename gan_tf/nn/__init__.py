"""Building blocks of the models, with no knowledge of data, training or serving: layers
(`SpectralNormalization`, self-attention, conditional batch norm, ...), losses (pure per-example
functions, any rank), likelihoods in nats, the shared image networks (`networks`) and the
image-to-image ones (`translation_networks`), noise, weight averages (`ema`), the Laplacian
pyramid, the text encoder, and FLOP counting (`profiling`)."""
