import numpy as np
import pytest
from scipy.signal import upfirdn

from ser_daemon.resample import StreamingResampler, downmix


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 8000, 16000])
def test_blockwise_equals_one_shot(rate: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(rate).astype(np.float32) * 0.1
    whole = StreamingResampler(rate, 16000)
    ref = whole.process(x)
    r = StreamingResampler(rate, 16000)
    pieces = []
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, 3000))
        pieces.append(r.process(x[pos : pos + n]))
        pos += n
    got = np.concatenate(pieces)
    assert r.out_total == len(got) == len(ref)
    np.testing.assert_allclose(got, ref, atol=2e-6)
    if rate != 16000:
        # And it is scipy's polyphase filter: upfirdn with resample_poly's taps (firwin, Kaiser 5.0).
        from scipy.signal import firwin

        m = max(r.up, r.down)
        np.testing.assert_allclose(r._h, firwin(20 * m + 1, 1.0 / m, window=("kaiser", 5.0)) * r.up, atol=1e-12)
        full = upfirdn(r._h, x.astype(np.float64), r.up, r.down)[: len(ref)]
        np.testing.assert_allclose(ref, full, atol=2e-6)


def test_no_click_at_block_edges_on_a_sine() -> None:
    rate = 48000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    r = StreamingResampler(rate, 16000)
    y = np.concatenate([r.process(x[i : i + 960]) for i in range(0, len(x), 960)])
    steady = y[200:-200]
    # A clean 440 Hz sine at 16 kHz changes by at most 2*pi*440/16000*0.5 per sample.
    assert np.max(np.abs(np.diff(steady))) < 2 * np.pi * 440 / 16000 * 0.5 * 1.05
    assert abs(np.max(np.abs(steady)) - 0.5) < 0.01


def test_downmix_averages_channels() -> None:
    x = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]], dtype=np.float32)
    np.testing.assert_allclose(downmix(x), [0.0, 0.5])
    assert downmix(np.ones(4, np.float32)).shape == (4,)
