"""The model: its bundle on disk, the inference backends, and the analyzer that batches windows through them."""
