import sys
import threading

import pytest

from tfrs_debias.serving.load_throttle import LoadThrottle


class FakeClock:
    """Advances 0.4 ms at every read."""

    def __init__(self):
        self.reads = 0

    def __call__(self):
        self.reads += 1
        return 0.0004 * self.reads


def _work(n=2000):
    return sum(abs(i) for i in range(n))


def test_pauses_after_each_run_and_for_the_duty_cycle_s_pause():
    clock, slept = FakeClock(), []
    throttle = LoadThrottle(
        1 / 3, run_seconds=0.001, check_every=1, clock=clock, sleep=slept.append
    )
    with throttle:
        _work()
    assert sys.getprofile() is None
    # Pause = 1 ms * (1 - 1/3) / (1/3) = 2 ms, every time.
    assert slept and all(s == pytest.approx(0.002) for s in slept)
    assert throttle.pauses == len(slept)
    # Reads: one on entering, one per event, one after each pause. Reads at 0.4 ms steps
    # reach the 1 ms run after 3 events (1.2 ms), so every third event pauses.
    events = clock.reads - 1 - throttle.pauses
    assert events > 2000 and throttle.pauses == events // 3


def test_reads_the_clock_every_check_every_events():
    clock = FakeClock()
    with LoadThrottle(0.5, check_every=64, clock=clock, sleep=lambda s: None) as throttle:
        _work()
    # 1 ms run, 0.4 ms per read: a pause at every third read; 64 events per read.
    reads = clock.reads - 1 - throttle.pauses
    assert reads > 2000 // 64 and throttle.pauses == reads // 3


def test_other_threads_run_unthrottled():
    clock = FakeClock()
    other = threading.Thread(target=_work, args=(20000,))
    with LoadThrottle(0.5, check_every=1, clock=clock, sleep=lambda s: None):
        other.start()
        other.join()
    # The other thread's 20k calls would be 20k+ reads; this thread's own start/join are
    # a few dozen events.
    assert clock.reads < 500


def test_stands_aside_for_a_profiler_and_when_off():
    clock = FakeClock()
    profiler = lambda frame, event, arg: None  # noqa: E731
    sys.setprofile(profiler)
    try:
        with LoadThrottle(0.5, check_every=1, clock=clock, sleep=lambda s: None) as throttle:
            _work()
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert clock.reads == 0 and throttle.pauses == 0
    with LoadThrottle(1.0, check_every=1, clock=clock) as throttle:
        assert sys.getprofile() is None
        _work()
    assert clock.reads == 0 and throttle.pauses == 0


@pytest.mark.parametrize(
    "kwargs", [{"duty_cycle": 0}, {"duty_cycle": 1.5}, {"run_seconds": 0}, {"check_every": 0}]
)
def test_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        LoadThrottle(**kwargs)
