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
    native = numerics.profile("native")
    assert (native["profile"], native["reason"]) == ("native", "--numerics native")
    assert native["cpu"] != "" and isinstance(native["inherited_env"], dict)


def test_a_cpu_without_avx2_is_named():
    assert numerics.supported("flags\t: fpu sse2 avx") == "this CPU has no AVX2/FMA"


def test_the_portable_record_names_the_cpu_and_what_the_host_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1024")  # the profile pins this one: not an inherited setting
    monkeypatch.setenv("SER_BENCHMARK_NUMERICS", "portable")
    for key, value in numerics.PORTABLE_ENV.items():
        if key != "OPENBLAS_L2_SIZE":
            monkeypatch.setenv(key, value)
    assert not numerics.active()  # the pinned L2 size was overridden by the host
    monkeypatch.setenv("OPENBLAS_L2_SIZE", numerics.PORTABLE_ENV["OPENBLAS_L2_SIZE"])
    record = numerics.profile("portable")
    assert record["profile"] == "portable" and record["env"]["MKL_CBWR"] == "COMPATIBLE"
    assert record["inherited_env"].get("OMP_NUM_THREADS") == "7" and "OPENBLAS_L2_SIZE" not in record["inherited_env"]
    assert numerics.cpu_model("vendor_id : GenuineIntel\nmodel name : Intel(R) Xeon(R) Processor") == (
        "GenuineIntel: Intel(R) Xeon(R) Processor"
    )


def test_mkl_runs_the_branch_the_profile_names():
    # MKL_CBWR=AVX2 is honoured on Intel CPUs only (elsewhere MKL reports CNR:AUTO); COMPATIBLE on any
    env = numerics.restart_argv(["distill"], environ={"PATH": "/usr/bin:/bin"})
    env["MKL_VERBOSE"] = "1"
    probe = "import torch; torch.mm(torch.ones(8, 8), torch.ones(8, 8))"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert "CNR:COMPATIBLE" in done.stdout + done.stderr
