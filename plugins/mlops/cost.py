"""One cost meter for every step: wall, CPU, peak memory and GPU time of a block of work.

Used as a context manager by the operators; the four numbers are logged as MLflow metrics so a
run's cost can be compared across days, devices and code changes. Pure Python (psutil only).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from types import TracebackType

import psutil

_MB = 1024 * 1024
# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


def _cpu_seconds() -> float:
    # os.times() includes reaped children (user + sys), so work done by subprocesses counts too.
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT


class CostMeter:
    """Measure the cost of the ``with`` block.

    * ``cost_wall_s``: elapsed wall-clock seconds.
    * ``cost_cpu_s``: CPU seconds of this process, user + system, including reaped children.
    * ``cost_peak_rss_mb``: peak resident memory of this process during the block, in MB. RSS is
      sampled every ``interval_s`` on a background thread; short spikes between samples are caught
      by ``ru_maxrss`` when they set a new lifetime high for the process (a rise of ``ru_maxrss``
      during the block can only have happened inside it). The larger of the two is reported.
    * ``cost_gpu_s``: wall seconds during which the GPU was marked in use, via the ``gpu``
      constructor argument or ``gpu_in_use()``; 0.0 for CPU-only work.

    ``metrics()`` may be called inside the block (values so far) or after it (final values).
    A meter is single-use.
    """

    def __init__(self, *, gpu: bool = False, interval_s: float = 0.05) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._interval_s = interval_s
        self._gpu_initial = gpu
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._started = False
        self._finished = False
        self._wall_start = 0.0
        self._wall_end: float | None = None
        self._cpu_start = 0.0
        self._cpu_end: float | None = None
        self._maxrss_start = 0
        self._peak_sampled = 0
        self._peak_maxrss = 0
        self._gpu_since: float | None = None
        self._gpu_total = 0.0

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> CostMeter:
        if self._started:
            raise RuntimeError("a CostMeter measures one block; create a new one")
        self._started = True
        self._maxrss_start = _maxrss_bytes()
        self._peak_sampled = self._process.memory_info().rss
        self._cpu_start = _cpu_seconds()
        self._wall_start = time.perf_counter()
        if self._gpu_initial:
            self._gpu_since = self._wall_start
        self._sampler = threading.Thread(target=self._sample_loop, name="cost-meter-rss", daemon=True)
        self._sampler.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        now = time.perf_counter()
        self._cpu_end = _cpu_seconds()
        self._wall_end = now
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self._sample()  # the final state, in case the block was shorter than one interval
        self._peak_maxrss = self._maxrss_peak_in_block()
        with self._lock:
            if self._gpu_since is not None:
                self._gpu_total += now - self._gpu_since
                self._gpu_since = None
        self._finished = True

    # -- GPU accounting --------------------------------------------------------------------
    def gpu_in_use(self, in_use: bool) -> None:
        """Mark the start (True) or end (False) of GPU use; repeated calls are harmless."""
        now = time.perf_counter()
        with self._lock:
            if in_use and self._gpu_since is None:
                self._gpu_since = now
            elif not in_use and self._gpu_since is not None:
                self._gpu_total += now - self._gpu_since
                self._gpu_since = None

    # -- results ---------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        if not self._started:
            raise RuntimeError("the CostMeter has not been entered yet")
        if self._finished:
            assert self._wall_end is not None and self._cpu_end is not None
            wall_end, cpu_end, peak = (
                self._wall_end,
                self._cpu_end,
                max(self._peak_sampled, self._peak_maxrss),
            )
            gpu = self._gpu_total
        else:
            wall_end, cpu_end = time.perf_counter(), _cpu_seconds()
            self._sample()
            peak = max(self._peak_sampled, self._maxrss_peak_in_block())
            with self._lock:
                gpu = self._gpu_total + (wall_end - self._gpu_since if self._gpu_since is not None else 0.0)
        return {
            "cost_wall_s": wall_end - self._wall_start,
            "cost_cpu_s": max(0.0, cpu_end - self._cpu_start),
            "cost_peak_rss_mb": peak / _MB,
            "cost_gpu_s": gpu,
        }

    # -- internals -------------------------------------------------------------------------
    def _maxrss_peak_in_block(self) -> int:
        # ru_maxrss is a lifetime high, and survives exec (a task process forked from a large
        # worker starts at the worker's size): it only says something about this block if it rose.
        now = _maxrss_bytes()
        return now if now > self._maxrss_start else 0

    def _sample(self) -> None:
        rss = self._process.memory_info().rss
        with self._lock:
            self._peak_sampled = max(self._peak_sampled, rss)

    def _sample_loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()
