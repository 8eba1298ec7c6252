"""`LoadThrottle`: runs a background load's Python work at a duty cycle, so the threads
answering requests keep the interpreter.

Loading a SavedModel is ~0.1-0.2 s of Python work on the calling thread (with
``tf.saved_model.load``: rebuilding each function's graph; with the server's
`SessionServable`: importing the MetaGraph piece by piece). TF Serving loads in C++
threads that do not compete with requests; here the loading thread and the request
threads share one interpreter lock, and while a version loaded in the background every
request needed the lock from it, again and again. On a 2-core machine, with 4 REST
clients back to back, the slowest request during a reload was 3.8-5.2x the p99 before it.

While a `LoadThrottle` is active, the thread that entered it sleeps ``pause`` seconds
(releasing the lock) after every ``run_seconds`` of work, so it holds the interpreter at
most ``duty_cycle`` of the time. It works through a profile hook on that thread only
(`sys.setprofile`), which costs the load about as much CPU again as the load itself (a
small factorized export: ~180 ms -> ~350 ms of CPU) and, at the default duty cycle of 1/3,
about 3-4x its wall time (a new version comes in after ~1.7 s instead of ~0.45 s under
load). With it, the slowest request during the same reloads was 2.4-2.8x the p99 before.

Where a profiler or debugger already has the thread's profile hook, the throttle stands
aside and the load runs at full speed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


def check_duty_cycle(value: float, name: str = "duty_cycle") -> None:
    """A ``ValueError`` naming ``name`` unless ``value`` is a share of time in (0, 1]."""
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value}")


class LoadThrottle:
    """A context manager that caps the share of wall time the entering thread runs
    Python; see the module docstring.

    Args:
      duty_cycle: the share of wall time the thread may run, in (0, 1]; 1 turns the
        throttle off. Defaults to 1/3.
      run_seconds: how long the thread runs between pauses. Defaults to 1 ms; each pause
        is ``run_seconds * (1 - duty_cycle) / duty_cycle``.
      check_every: profile events between two reads of the clock. Defaults to 64.
      clock: the wall clock (seconds). Defaults to `time.perf_counter`.
      sleep: what pauses the thread, releasing the interpreter. Defaults to `time.sleep`.
    """

    def __init__(
        self,
        duty_cycle: float = 1 / 3,
        run_seconds: float = 0.001,
        check_every: int = 64,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        check_duty_cycle(duty_cycle)
        if run_seconds <= 0:
            raise ValueError(f"run_seconds must be > 0, got {run_seconds}")
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.duty_cycle = duty_cycle
        self.run_seconds = run_seconds
        self.pause_seconds = run_seconds * (1 - duty_cycle) / duty_cycle
        self.check_every = check_every
        self._clock = clock
        self._sleep = sleep
        self._events = 0
        self._since = 0.0
        self._active = False
        #: Pauses taken so far.
        self.pauses = 0

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        self._events += 1
        if self._events % self.check_every:
            return
        now = self._clock()
        if now - self._since >= self.run_seconds:
            self._sleep(self.pause_seconds)
            self.pauses += 1
            self._since = self._clock()

    def __enter__(self) -> LoadThrottle:
        self._active = self.duty_cycle < 1 and sys.getprofile() is None
        if self._active:
            self._events = 0
            self._since = self._clock()
            sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._active:
            sys.setprofile(None)
            self._active = False
