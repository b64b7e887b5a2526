import numpy as np
import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.ringbuffer import AudioRing


def ramp(start: int, n: int, channels: int = 1) -> np.ndarray:
    x = np.arange(start, start + n, dtype=np.float32)
    return np.repeat(x[:, None], channels, axis=1)


def test_reads_back_in_order_with_indices_across_wraparound() -> None:
    ring = AudioRing(100, channels=2)
    got = []
    pos = 0
    for k, n in enumerate([30, 45, 60, 1, 99, 7] * 5):
        ring.write(ramp(pos, n, 2), arrival_time=float(k))
        pos += n
        r = ring.read()
        assert r.lost == 0
        assert r.start_index == pos - n
        got.append(r.samples[:, 0])
    allv = np.concatenate(got)
    np.testing.assert_array_equal(allv, np.arange(pos, dtype=np.float32))


def test_overrun_is_counted_exactly_and_newest_kept() -> None:
    ring = AudioRing(100)
    for k in range(5):
        ring.write(ramp(k * 40, 40)[:, 0], arrival_time=float(k))  # 200 frames into a 100-frame ring
    r = ring.read()
    assert r.lost == 100
    assert ring.lost_frames == 100
    assert r.start_index == 100
    np.testing.assert_array_equal(r.samples[:, 0], np.arange(100, 200, dtype=np.float32))
    # Reading again gives nothing new and loses nothing more.
    r2 = ring.read()
    assert len(r2.samples) == 0 and r2.lost == 0


def test_arrival_time_of_each_sample() -> None:
    ring = AudioRing(1000)
    ring.write(np.zeros(10, np.float32), 1.5)
    ring.write(np.zeros(20, np.float32), 2.5)
    assert ring.arrival_time(0) == 1.5
    assert ring.arrival_time(9) == 1.5
    assert ring.arrival_time(10) == 2.5
    assert ring.arrival_time(29) == 2.5
    assert np.isnan(ring.arrival_time(30))
    r = ring.read()
    assert r.newest_time == 2.5 and r.end_index == 30


def test_block_log_is_bounded() -> None:
    ring = AudioRing(1000, max_blocks=4)
    for k in range(10):
        ring.write(np.zeros(5, np.float32), float(k))
    assert ring.arrival_time(49) == 9.0
    assert np.isnan(ring.arrival_time(0))  # forgotten, not wrong


def test_oversize_block_keeps_newest_and_counts() -> None:
    ring = AudioRing(50)
    ring.write(ramp(0, 80)[:, 0], 0.0)
    r = ring.read()
    assert ring.oversize_blocks == 1
    assert r.lost == 30 and r.start_index == 30
    np.testing.assert_array_equal(r.samples[:, 0], np.arange(30, 80, dtype=np.float32))


def test_read_max_frames_leaves_the_rest() -> None:
    ring = AudioRing(100)
    ring.write(ramp(0, 60)[:, 0], 0.0)
    a = ring.read(max_frames=25)
    b = ring.read()
    assert (a.start_index, len(a.samples), b.start_index, len(b.samples)) == (0, 25, 25, 35)


def test_write_does_not_allocate_new_storage() -> None:
    ring = AudioRing(64)
    data_id = id(ring._data)
    ring.write(np.ones(40, np.float32), 0.0)
    ring.write(np.ones(40, np.float32), 0.0)
    assert id(ring._data) == data_id


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ConfigError):
        AudioRing(0)
