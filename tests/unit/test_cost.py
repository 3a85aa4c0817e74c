"""The cost meter: each of its four numbers moves when the matching resource is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from mlops.cost import CostMeter

KEYS = {"cost_wall_s", "cost_cpu_s", "cost_peak_rss_mb", "cost_gpu_s"}


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds  # CPU time, so a busy host does not shorten the work
    x = 0
    while time.process_time() < end:
        x += 1


def test_wall_covers_sleep_and_cpu_stays_low() -> None:
    with CostMeter() as meter:
        time.sleep(0.3)
    m = meter.metrics()
    assert set(m) == KEYS and all(isinstance(v, float) for v in m.values())
    assert m["cost_wall_s"] >= 0.3
    assert m["cost_cpu_s"] < 0.2  # sleeping costs (almost) no CPU


def test_cpu_grows_with_busy_loop() -> None:
    with CostMeter() as meter:
        _busy(0.4)
    m = meter.metrics()
    assert m["cost_cpu_s"] >= 0.35
    assert m["cost_wall_s"] >= m["cost_cpu_s"] * 0.5


def test_peak_rss_sees_a_200mb_array() -> None:
    before_mb = psutil.Process().memory_info().rss / 2**20
    with CostMeter() as meter:
        block = np.ones(200 * 2**20 // 8)  # 200 MB, every page written
        time.sleep(0.2)
        del block
    after_mb = psutil.Process().memory_info().rss / 2**20
    m = meter.metrics()
    assert m["cost_peak_rss_mb"] >= before_mb + 180
    assert m["cost_peak_rss_mb"] > after_mb + 150  # the peak, not the RSS at the end


SPIKE = """
import json, os, sys
import numpy as np
from mlops.cost import CostMeter

# ru_maxrss survives exec, so this interpreter starts with the test runner's peak. A forked
# child starts counting from this small process, so the spike below is a new high there.
pid = os.fork()
if pid == 0:
    with CostMeter(interval_s=10) as quiet:
        pass
    with CostMeter(interval_s=10) as meter:
        block = np.ones(400 * 2**20 // 8)
        del block
    print(json.dumps([quiet.metrics()["cost_peak_rss_mb"], meter.metrics()["cost_peak_rss_mb"]]), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_short_spike_is_caught_by_maxrss() -> None:
    # Freed within one sampling interval, so only ru_maxrss can see it, and only where it is a
    # new high for the process: hence a fresh, small process.
    plugins = str(Path(__file__).resolve().parents[2] / "plugins")
    out = subprocess.run(
        [sys.executable, "-c", SPIKE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": plugins},
    )
    quiet_mb, spike_mb = json.loads(out.stdout)
    assert spike_mb >= quiet_mb + 350


def test_gpu_seconds() -> None:
    with CostMeter() as cpu_meter:
        time.sleep(0.05)
    assert cpu_meter.metrics()["cost_gpu_s"] == 0.0

    with CostMeter() as meter:
        time.sleep(0.1)
        meter.gpu_in_use(True)
        time.sleep(0.2)
        meter.gpu_in_use(True)  # repeated: no effect
        meter.gpu_in_use(False)
        time.sleep(0.1)
    m = meter.metrics()
    assert 0.2 <= m["cost_gpu_s"] < m["cost_wall_s"] - 0.15

    with CostMeter(gpu=True) as gpu_meter:
        time.sleep(0.1)
    g = gpu_meter.metrics()
    assert g["cost_gpu_s"] >= 0.1 and g["cost_gpu_s"] <= g["cost_wall_s"]


def test_metrics_inside_the_block_and_single_use() -> None:
    meter = CostMeter()
    with pytest.raises(RuntimeError, match="not been entered"):
        meter.metrics()
    with meter:
        time.sleep(0.05)
        partial = meter.metrics()["cost_wall_s"]
        time.sleep(0.05)
    assert 0.05 <= partial < meter.metrics()["cost_wall_s"]
    final = meter.metrics()
    time.sleep(0.02)
    assert meter.metrics() == final  # frozen after exit
    with pytest.raises(RuntimeError, match="one block"), meter:
        pass


def test_exception_in_block_still_measured() -> None:
    meter = CostMeter()
    with pytest.raises(KeyError), meter:
        time.sleep(0.05)
        raise KeyError("boom")
    assert meter.metrics()["cost_wall_s"] >= 0.05
