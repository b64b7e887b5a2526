"""The arousal/valence table behind the auxiliary head: pure, no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from ser_daemon.training.affect import AFFECT, affect_table


def test_table_follows_the_label_order_and_keeps_sad_apart_from_calm() -> None:
    t = affect_table(["sad", "calm", "neutral"])
    assert t.shape == (3, 2) and t.dtype == np.float32
    assert tuple(t[2]) == (0.0, 0.0)
    arousal, valence = t[:, 0], t[:, 1]
    assert arousal[0] < 0 and arousal[1] < 0  # both quiet...
    assert valence[0] < 0 < valence[1]  # ...told apart by valence
    assert np.all(np.abs(affect_table(sorted(AFFECT))) <= 1.0)  # inside the tanh head's range


def test_every_label_the_daemon_ships_has_a_place() -> None:
    import json
    from pathlib import Path

    labels = json.loads((Path(__file__).parents[3] / "models" / "default" / "ser_model.json").read_text())["labels"]
    assert affect_table(labels).shape == (len(labels), 2)


def test_unknown_labels_are_named() -> None:
    with pytest.raises(ValueError, match="sleepy, bored.*knows angry, calm"):
        affect_table(["angry", "sleepy", "bored"])
