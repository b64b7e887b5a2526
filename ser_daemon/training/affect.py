"""Arousal and valence of each emotion label: targets for an auxiliary training head.

Why: sad and calm are both quiet and slow (low arousal) and differ in
valence; a network that only names categories can let them share one corner
of its embedding, and did (English sad recall 3-24 % on unseen actors, most
of it shown as calm).  A second head that must place every window on
Russell's circumplex (arousal, valence) asks the embedding to keep valence.
The two dimensions also mean the same in every corpus and language, which
the categories' priors do not.

The coordinates are the usual textbook placements (Russell 1980; Scherer
2005) on [-1, 1], fixed before any training run; they are targets, not
measurements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["AFFECT", "affect_table"]

#: label -> (arousal, valence)
AFFECT: dict[str, tuple[float, float]] = {
    "angry": (0.8, -0.6),
    "calm": (-0.6, 0.4),
    "disgust": (0.2, -0.7),
    "fearful": (0.7, -0.6),
    "happy": (0.6, 0.8),
    "neutral": (0.0, 0.0),
    "sad": (-0.6, -0.7),
    "surprised": (0.7, 0.3),
}


def affect_table(labels: Sequence[str]) -> np.ndarray:
    """``(len(labels), 2)`` float32 rows of (arousal, valence), in ``labels``' order.

    Raises:
        ValueError: a label has no place on the circumplex (names all of them).
    """
    unknown = [name for name in labels if name not in AFFECT]
    if unknown:
        raise ValueError(f"no arousal/valence for label(s) {', '.join(unknown)}; "
                         f"the affect head knows {', '.join(sorted(AFFECT))}")
    return np.array([AFFECT[name] for name in labels], dtype=np.float32)
