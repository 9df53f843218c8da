"""Serving: `export.export_model` writes a versioned SavedModel for TF Serving (with its warmup
requests and metadata); each model family builds its signatures here (`gan_signatures`,
`translation_signatures`, `vae_signatures`, `pixelcnn_signatures`, `stackgan_signatures`,
`melody_signatures`); `client` talks to a running server and `sampling` samples from an export or
a `.keras` file locally. The models call the signature builders through the contract's
`export_archive`; nothing here imports a model."""
