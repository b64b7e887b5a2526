import numpy as np
import pytest

from ser_daemon.errors import ConfigError
from ser_daemon.core.ringbuffer import AudioRing


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


@pytest.mark.parametrize("kw", [dict(capacity_frames=0), dict(capacity_frames=10, channels=0),
                                dict(capacity_frames=10, max_blocks=0), dict(capacity_frames=-1, channels=1)])
def test_each_size_must_be_positive(kw: dict) -> None:
    with pytest.raises(ConfigError, match=r"^ring sizes must be positive\. Received: capacity_frames=-?\d+, channels=\d+, max_blocks=\d+$"):
        AudioRing(**kw)


def test_smallest_sizes_work() -> None:
    ring = AudioRing(1, channels=1, max_blocks=1)
    ring.write(np.array([0.5], np.float32), 3.0)
    r = ring.read()
    assert r.samples.dtype == np.float32 and r.samples.shape == (1, 1) and r.newest_time == 3.0


def test_samples_come_back_as_float32_copies_with_the_first_block_time() -> None:
    ring = AudioRing(16, channels=2)
    ring.write(np.full((4, 2), 0.25, dtype=np.float64), 7.0)  # any float block is stored as float32
    r = ring.read()
    assert r.samples.dtype == np.float32 and r.newest_time == 7.0 and ring.arrival_time(0) == 7.0
    r.samples[:] = 9.0  # a copy: the ring is not changed
    ring.write(np.zeros((0, 2), np.float32), 8.0)  # an empty block is not a block
    assert ring.arrival_time(3) == 7.0 and np.isnan(ring.arrival_time(4))
    assert ring._copy(0, 4)[0, 0] == 0.25


def test_an_empty_read_has_no_newest_time() -> None:
    ring = AudioRing(16)
    ring.write(np.ones(4, np.float32), 1.0)
    assert ring.read().newest_time == 1.0
    empty = ring.read()
    assert len(empty.samples) == 0 and np.isnan(empty.newest_time) and empty.start_index == 4


def test_a_block_of_exactly_the_capacity_is_not_oversize() -> None:
    ring = AudioRing(8)
    ring.write(ramp(0, 8)[:, 0], 0.0)
    r = ring.read()
    assert ring.oversize_blocks == 0 and r.lost == 0 and r.start_index == 0
    ring.write(ramp(8, 9)[:, 0], 1.0)
    ring.write(ramp(17, 20)[:, 0], 2.0)
    r = ring.read()
    assert ring.oversize_blocks == 2 and ring.write_index == 37
    assert r.lost == 21 and ring.lost_frames == 21 and r.start_index == 29  # lost counts add up
    np.testing.assert_array_equal(r.samples[:, 0], np.arange(29, 37, dtype=np.float32))


class _LappingRing(AudioRing):
    """A ring whose producer writes ``lap`` frames while the consumer copies (the race, made exact)."""

    lap = 0

    def _copy(self, start: int, n: int) -> np.ndarray:
        out = super()._copy(start, n)
        if self.lap:
            self.write(np.full(self.lap, -1.0, np.float32), 99.0)
            self.lap = 0
        return out


@pytest.mark.parametrize("lap,lost", [(5, 5), (10, 10), (30, 10)])
def test_frames_overwritten_during_the_copy_are_dropped_and_counted(lap: int, lost: int) -> None:
    """The copy may hold frames the producer overwrote meanwhile: they are dropped and counted as lost."""
    ring = _LappingRing(10)
    ring.write(ramp(0, 10)[:, 0], 1.0)
    ring.lap = lap
    r = ring.read()
    assert r.lost == lost and ring.lost_frames == lost
    assert r.start_index == lost and len(r.samples) == 10 - lost
    np.testing.assert_array_equal(r.samples[:, 0], np.arange(lost, 10, dtype=np.float32))
    assert np.all(r.samples != -1.0)  # nothing of the new block leaks into the old frames
    nxt = ring.read()
    assert nxt.start_index == 10 + max(0, lap - 10) and nxt.lost == max(0, lap - 10)


def test_arrival_time_bisects_many_blocks() -> None:
    ring = AudioRing(10000, max_blocks=64)
    sizes = [1, 2, 3, 5, 8, 13] * 10
    pos = 0
    for k, n in enumerate(sizes):
        ring.write(np.zeros(n, np.float32), float(k))
        pos += n
    starts = np.cumsum([0] + sizes[:-1])
    for k, (s, n) in enumerate(zip(starts, sizes)):
        assert ring.arrival_time(int(s)) == float(k) and ring.arrival_time(int(s + n - 1)) == float(k)
    assert np.isnan(ring.arrival_time(pos)) and np.isnan(ring.arrival_time(-1))


def test_defaults_mono_and_4096_remembered_blocks() -> None:
    ring = AudioRing(10000)
    assert ring.channels == 1
    for k in range(4097):
        ring.write(np.zeros(1, np.float32), float(k))
    assert np.isnan(ring.arrival_time(0)) and ring.arrival_time(1) == 1.0 and ring.arrival_time(4096) == 4096.0


def test_losses_before_and_during_one_read_add_up() -> None:
    """An overrun (the consumer fell behind) and a lap during the copy, in the same read, then another overrun."""
    ring = _LappingRing(10)
    ring.write(ramp(0, 15)[:, 0], 1.0)  # 5 frames lost before the read
    ring.lap = 3  # and 3 more overwritten while it copies
    r = ring.read()
    assert (r.lost, r.start_index, len(r.samples)) == (8, 8, 7)
    np.testing.assert_array_equal(r.samples[:, 0], np.arange(8, 15, dtype=np.float32))
    ring.write(ramp(18, 12)[:, 0], 2.0)  # 30 written, read up to 15 (the lap's 3 frames unread): 5 lost
    r = ring.read()
    assert (r.lost, r.start_index, ring.lost_frames) == (5, 20, 13)
