"""Portable numerics: the environment caps each library's kernels, and a distillation restarts into it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmark import numerics

needs_portable = pytest.mark.skipif(
    numerics.supported() is not None, reason=f"the portable numerics profile cannot run here: {numerics.supported()}"
)
"""For a test that runs the portable profile: a machine without it has nothing to test there."""

_PROBE = """
import json, numpy, torch
from numpy.lib.introspect import opt_func_info
targets = sorted({v["current"] for f in opt_func_info().values() for v in f.values()})
print(json.dumps({"torch": torch.backends.cpu.get_cpu_capability(), "numpy": targets}))
"""


def _probe(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@needs_portable
def test_portable_environment_caps_torch_and_numpy_at_avx2():
    env = numerics.restart_argv(["distill"], environ={"PATH": "/usr/bin:/bin"})
    assert env is not None and numerics.active(env)
    probed = _probe(env)
    assert probed["torch"] == "AVX2"
    # numpy's loops: the AVX2 target or the baseline, never an AVX-512 one (X86_V4, AVX512_*)
    assert all(t in ("X86_V3",) or t.startswith("baseline") for t in probed["numpy"]), probed


@needs_portable
def test_only_a_portable_distill_restarts():
    portable = {**numerics.PORTABLE_ENV, "SER_BENCHMARK_NUMERICS": "portable"}
    assert numerics.restart_argv(["run", "--model", "wav2small"], environ={}) is None
    assert numerics.restart_argv(["distill", "--numerics", "native"], environ={}) is None
    assert numerics.restart_argv(["distill", "--help"], environ={}) is None
    assert numerics.restart_argv(["distill"], environ=portable) is None  # already restarted: no loop
    assert numerics.restart_argv(["distill", "--epochs", "2"], environ={}) is not None


@needs_portable
def test_a_distill_started_in_process_records_native_kernels_and_why():
    # pytest imported numpy and torch long before: the caps cannot apply any more, and the record says so
    record = numerics.profile("portable")
    assert record["profile"] == "native"
    assert "python -m benchmark distill" in record["reason"]
    assert numerics.profile("native") == {"profile": "native", "reason": "--numerics native"}


def test_a_cpu_without_avx2_is_named():
    assert numerics.supported("flags\t: fpu sse2 avx") == "this CPU has no AVX2/FMA"
