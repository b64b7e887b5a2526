"""Training and evaluation of the emotion model (``ser-train``, ``ser-eval``).

Needs the ``train`` extra (TensorFlow, matplotlib); the daemon itself never
imports this package.  Usage: ``USAGE.md`` beside this file.  Modules:

- :mod:`.datasets`: find labelled clips in the supported folder layouts.
- :mod:`ser_daemon.audio.clips` (outside this package): load, trim silence, cut windows, compute features.
- :mod:`.augment`: waveform and SpecAugment augmentation (seeded).
- :mod:`.model_def`: the CNN, defined once with backend-neutral Keras layers.
- :mod:`.train`: features of augmented windows, the seeded fit, k-fold, bundle export.
- :mod:`.evaluate`: metrics, reports (text/JSON/PNG), streaming replay scoring.
- :mod:`.report`: MODEL_CARD.md from a bundle's metadata and reports.
- :mod:`.synthetic`: tiny generated corpora in every layout (tests, smoke runs).
- :mod:`.train_cli`, :mod:`.eval_cli`: the console scripts.
"""

__all__: list[str] = []
