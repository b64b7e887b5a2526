"""The emotion CNN, defined once with backend-neutral Keras 3 layers.

Input: ``(batch, frames, n_mels)`` raw log-mel from :func:`ser_daemon.core.features.log_mel`.
Output: ``(batch, n_labels)`` softmax.  Normalisation happens inside the model:
a parameter-free per-window standardisation (LayerNormalization over time and
mel, no centre/scale), which removes the recording gain (an additive offset in
the log domain) so the model does not depend on microphone level.  Only stock
layers are used (no Lambda, no TensorFlow ops), so the ``.keras`` file loads
under Keras' JAX or PyTorch backends too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ModelConfig", "build_model", "pooled_features", "with_speaker_adversary"]


@dataclass(frozen=True)
class ModelConfig:
    """Size and regularisation of the CNN.

    Attributes:
        width: channels of the first conv block; blocks use width x (1, 2, 4, 8).
        blocks: number of conv blocks (each conv-BN-ReLU, pooled 2x2 except the last).
        stem_stride: stride of the first convolution in time and mel; 2 quarters
            the cost of everything after it (training on 2 CPU cores is the
            bottleneck this guards).
        dropout: dropout before the classifier.
        spatial_dropout: dropout of whole feature maps after each pooled block.
        l2: L2 weight decay on conv and dense kernels.
        level_units: width of the level branch (0: none).  The per-window
            standardisation makes the CNN blind to how loud and how bright the
            window is against the speaker's own reference, which is most of
            what tells aroused speech (angry, happy) from quiet speech (sad,
            calm).  The branch reads, per mel band, the loudest 80 ms of the
            window relative to that reference (the input before the
            standardisation; silence does not dilute a maximum) and joins a
            small dense projection of it to the pooled CNN features.
        window_norm: ``"standardise"`` (subtract the window's mean and divide by
            its spread) or ``"centre"`` (subtract the mean only).  Either removes
            the microphone gain; dividing by the spread also removes how much the
            window's energy varies, which differs between lively and flat speech.
        pooling: how the last conv block's map becomes the embedding.
            ``"mean"``: the average over time and mel (where in the window and at
            which pitch a pattern appeared is lost).  ``"meanmax"``: that average
            beside the maximum, so a short emotional peak in a mostly flat
            window is not averaged away.  ``"band"``: the average over time
            only, per remaining mel band, so the embedding keeps which part of
            the spectrum a pattern came from.  ``"attention"``: the average over
            mel, then a mean over time weighted by learned per-frame scores
            (a softmax over time), so the frames that carry the emotion weigh
            more than pauses and flat stretches of the 2 s window.
    """

    width: int = 16
    blocks: int = 4
    stem_stride: int = 2
    dropout: float = 0.3
    spatial_dropout: float = 0.1
    l2: float = 1e-4
    level_units: int = 0
    window_norm: str = "standardise"
    pooling: str = "mean"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_model(input_shape: tuple[int, int], n_labels: int, cfg: ModelConfig = ModelConfig(), seed: int = 0) -> Any:
    """A compiled-free ``keras.Model`` for windows of ``input_shape`` (frames, n_mels)."""
    import keras
    from keras import layers

    frames, mels = input_shape
    reg = keras.regularizers.L2(cfg.l2) if cfg.l2 > 0 else None
    init = keras.initializers.HeNormal(seed=seed)
    inp = keras.Input(shape=(frames, mels), name="log_mel")
    x = layers.Reshape((frames, mels, 1), name="add_channel")(inp)
    if cfg.window_norm == "standardise":
        x = layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, epsilon=1e-3, name="window_norm")(x)
    elif cfg.window_norm == "centre":
        mean = layers.GlobalAveragePooling2D(keepdims=True, name="window_mean")(x)
        x = layers.Subtract(name="window_norm")([x, mean])
    else:
        raise ValueError(f"window_norm must be 'standardise' or 'centre'. Received: window_norm={cfg.window_norm!r}")
    for b in range(cfg.blocks):
        ch = cfg.width * (2 ** min(b, 3))
        stride = cfg.stem_stride if b == 0 else 1
        x = layers.Conv2D(ch, 3, strides=stride, padding="same", use_bias=False, kernel_initializer=init,
                          kernel_regularizer=reg, name=f"conv{b + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{b + 1}")(x)
        x = layers.ReLU(name=f"relu{b + 1}")(x)
        if b < cfg.blocks - 1:
            x = layers.MaxPooling2D(2, name=f"pool{b + 1}")(x)
            if cfg.spatial_dropout > 0:
                x = layers.SpatialDropout2D(cfg.spatial_dropout, seed=seed + b, name=f"sdrop{b + 1}")(x)
    # The pooled CNN features are the layer "pooled" ("gap" for mean pooling, its name since the
    # first model); "embedding" is only ever the level branch joined to them (see pooled_features).
    if cfg.pooling == "mean":
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    elif cfg.pooling == "meanmax":
        x = layers.Concatenate(name="pooled")([layers.GlobalAveragePooling2D(name="gap_mean")(x),
                                               layers.GlobalMaxPooling2D(name="gmp")(x)])
    elif cfg.pooling == "band":
        t, f, c = x.shape[1], x.shape[2], x.shape[3]
        x = layers.AveragePooling2D(pool_size=(t, 1), name="time_mean")(x)
        x = layers.Reshape((f * c,), name="pooled")(x)
    elif cfg.pooling == "attention":
        t, f, c = x.shape[1], x.shape[2], x.shape[3]
        seq = layers.Reshape((t, c), name="frames")(layers.AveragePooling2D(pool_size=(1, f), name="mel_mean")(x))
        score = layers.Dense(32, activation="tanh", kernel_regularizer=reg, kernel_initializer=init,
                             name="attention_hidden")(seq)
        score = layers.Dense(1, kernel_initializer=init, name="attention_score")(score)
        weight = layers.Softmax(axis=1, name="attention_weight")(score)
        x = layers.Flatten(name="pooled")(layers.Dot(axes=1, name="attention_mean")([weight, seq]))
    else:
        raise ValueError(
            f"pooling must be 'mean', 'meanmax', 'band' or 'attention'. Received: pooling={cfg.pooling!r}")
    if cfg.level_units > 0:
        lvl = layers.AveragePooling1D(pool_size=8, strides=4, name="level_smooth")(inp)
        lvl = layers.GlobalMaxPooling1D(name="level_peak")(lvl)
        lvl = layers.BatchNormalization(name="level_bn")(lvl)
        lvl = layers.Dense(cfg.level_units, activation="relu", kernel_regularizer=reg,
                           kernel_initializer=init, name="level_dense")(lvl)
        x = layers.Concatenate(name="embedding")([x, lvl])
    if cfg.dropout > 0:
        x = layers.Dropout(cfg.dropout, seed=seed + 100, name="dropout")(x)
    out = layers.Dense(n_labels, activation="softmax", kernel_regularizer=reg,
                       kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 101), name="probs")(x)
    return keras.Model(inp, out, name="ser_cnn")


def pooled_features(model: Any) -> Any:
    """The pooled CNN features of a model from :func:`build_model` (without any level branch)."""
    names = {layer.name for layer in model.layers}
    return model.get_layer("pooled" if "pooled" in names else "gap").output


def with_speaker_adversary(model: Any, n_speakers: int, seed: int = 0) -> tuple[Any, Any]:
    """A training model that also guesses the speaker, through a gradient reversal.

    Why: with a handful of training speakers the CNN learns voices as much as
    emotions (it is right on 91% of its own actors' clips and 57% of new
    ones).  The speaker head learns to name the speaker from the pooled
    features; the reversal hands the CNN the opposite of that gradient, so
    the features that name a speaker are pushed out (domain-adversarial
    training, Ganin & Lempitsky 2015).

    Returns ``(train_model, strength)``: ``train_model`` maps the window to
    ``[probs, speaker]`` and shares every layer with ``model`` (which stays
    the exported one, stock layers only); ``strength`` is the reversal's
    ``keras.Variable`` for a warm-up schedule.
    """
    import keras
    from keras import layers, ops

    strength = keras.Variable(0.0, trainable=False, name="reversal_strength")

    class GradientReversal(layers.Layer):
        def call(self, x):  # type: ignore[no-untyped-def]
            s = ops.cast(strength, x.dtype)
            return ops.stop_gradient(x) * (1.0 + s) - s * x

    pooled = pooled_features(model)
    h = GradientReversal(name="reverse_gradient")(pooled)
    h = layers.Dense(64, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed=seed + 200),
                     name="speaker_hidden")(h)
    spk = layers.Dense(n_speakers, activation="softmax",
                       kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 201), name="speaker")(h)
    return keras.Model(model.input, [model.output, spk], name="ser_cnn_adversarial"), strength


def with_affect_head(model: Any, seed: int = 0) -> Any:
    """A training model that also places each window's arousal and valence (each in [-1, 1]).

    The head reads the pooled features the emotion head reads, so its
    gradient shapes the shared embedding (see :mod:`~ser_daemon.training.affect`
    for why).  Returns a model mapping the window to ``[probs, affect]`` that
    shares every layer with ``model``, which stays the exported one.
    """
    import keras
    from keras import layers

    affect = layers.Dense(2, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 301),
                          name="affect")(pooled_features(model))
    return keras.Model(model.input, [model.output, affect], name="ser_cnn_affect")
