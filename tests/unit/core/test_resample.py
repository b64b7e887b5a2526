import numpy as np
import pytest
from scipy.signal import upfirdn

from ser_daemon.errors import ConfigError
from ser_daemon.core.resample import StreamingResampler, downmix


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


def reference(x: np.ndarray, r: StreamingResampler) -> np.ndarray:
    """The whole signal through scipy's polyphase filter, cut to the outputs a causal stream has."""
    n_out = (r.up * (len(x) - 1)) // r.down + 1
    return upfirdn(r._h, x.astype(np.float64), r.up, r.down)[:n_out]


@pytest.mark.parametrize("rate", [48000, 44100, 8000])
def test_one_sample_at_a_time_from_the_very_start(rate: int) -> None:
    x = np.random.default_rng(2).standard_normal(3000).astype(np.float32) * 0.1
    r = StreamingResampler(rate, 16000)
    got = [r.process(x[i : i + 1]) for i in range(len(x))]
    assert all(g.dtype == np.float32 for g in got)
    y = np.concatenate(got)
    ref = reference(x, r)
    assert len(y) == len(ref) == r.out_total == (r.up * (len(x) - 1)) // r.down + 1
    np.testing.assert_allclose(y, ref, atol=2e-6)


@pytest.mark.parametrize("rate", [48000, 22050])
def test_callers_may_reuse_their_block_buffer(rate: int) -> None:
    """A sound card hands the same buffer every time: the resampler must not keep a view of it."""
    x = np.random.default_rng(3).standard_normal(4000).astype(np.float32) * 0.1
    r = StreamingResampler(rate, 16000)
    buf = np.empty(500, np.float32)
    out = []
    for i in range(0, len(x), 500):
        buf[:] = x[i : i + 500]
        out.append(r.process(buf))
        buf[:] = 7.0  # the driver scribbles over it before the next callback
    np.testing.assert_allclose(np.concatenate(out), reference(x, r), atol=2e-6)


@pytest.mark.parametrize("rate,up,down", [(48000, 1, 3), (44100, 160, 441), (8000, 2, 1), (22050, 320, 441)])
def test_ratio_delay_and_input_index(rate: int, up: int, down: int) -> None:
    r = StreamingResampler(rate, 16000)
    assert (r.up, r.down, r.passthrough) == (up, down, False)
    assert r.delay_out_samples == 10 * max(up, down) / down
    assert [r.input_index_for_output(m) for m in (0, 1, 7, 1000)] == [(m * down) // up for m in (0, 1, 7, 1000)]


def test_passthrough_is_an_exact_copy() -> None:
    r = StreamingResampler(16000, 16000)
    assert r.passthrough and r.delay_out_samples == 0.0 and r.input_index_for_output(123) == 123
    x = np.linspace(-1, 1, 100)  # float64 in: float32 out
    y = r.process(x)
    assert y.dtype == np.float32 and y is not x
    np.testing.assert_array_equal(y, x.astype(np.float32))
    assert r.out_total == 100
    r.reset()
    assert r.out_total == 0


def test_empty_and_bad_input() -> None:
    r = StreamingResampler(48000, 16000)
    e = r.process(np.zeros(0, np.float32))
    assert e.shape == (0,) and e.dtype == np.float32
    r.process(np.ones(1, np.float32))
    short = r.process(np.ones(1, np.float32))  # the second input completes no output yet
    assert short.shape == (0,) and short.dtype == np.float32 and r.out_total == 1
    with pytest.raises(ConfigError, match=r"takes mono audio. Received shape \(4, 2\)"):
        r.process(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize("rates", [(0, 16000), (16000, 0), (-8000, 16000), (16000, -1)])
def test_rates_must_be_positive(rates: tuple[int, int]) -> None:
    with pytest.raises(ConfigError, match=rf"^sample rates must be positive. Received: in_rate={rates[0]}, out_rate={rates[1]}$"):
        StreamingResampler(*rates)


def test_tiny_rates_are_fine() -> None:
    r = StreamingResampler(1, 2)
    assert (r.up, r.down) == (2, 1) and len(r.process(np.ones(3, np.float32))) == 5
    r = StreamingResampler(2, 1)
    assert (r.up, r.down) == (1, 2) and len(r.process(np.ones(5, np.float32))) == 3


def test_downmix_shapes_and_types() -> None:
    mono = np.linspace(0, 1, 8, dtype=np.float32)
    assert downmix(mono) is mono  # already mono float32: no copy on the audio path
    col = np.linspace(0, 1, 16, dtype=np.float32).reshape(8, 2)[:, :1]
    out = downmix(col)
    assert out.shape == (8,) and out.dtype == np.float32 and np.shares_memory(out, col)
    np.testing.assert_array_equal(out, col[:, 0])
    d = downmix(np.array([[1.0, 0.0], [0.25, 0.75]]))  # float64 stereo in: float32 mean out
    assert d.dtype == np.float32
    np.testing.assert_array_equal(d, [0.5, 0.5])
    assert downmix(np.arange(6, dtype=np.float64)).dtype == np.float32
