"""Portable numerics: the same training bits from a seed, as far as the libraries let a run pin them.

torch, oneDNN, MKL, numpy and OpenBLAS each pick their vector kernels by
CPU at run time. The kernels round differently, and training amplifies
the last bits: the same distillation on an Intel Xeon (AVX-512, AMX) and
on an AMD EPYC ended at different networks. The *portable* profile caps
each of those libraries at a path every x86-64 CPU with AVX2 runs, pins
the settings a host may set for them and fixes the number of CPU threads.
On one machine a seed and recipe then give the same bytes whatever CPU
the process is scheduled on; across CPU vendors the same bytes are not
shown (oneDNN sizes its blocking by the CPU's caches, onnxruntime has no
cap), so a re-distillation is judged by behaviour
(``docs/research/portable-numerics.md``, :mod:`benchmark.distill.compare`).

The libraries read these settings once, when they load, so they must be
in the environment before Python starts: ``python -m benchmark distill``
restarts itself with them (:func:`restart_argv`). A run started another
way (e.g. ``main()`` called in-process) computes with the machine's own
kernels and records that (:func:`profile`). Either record names the CPU
and any inherited variable that can still move a kernel (:func:`inherited`).
"""

from __future__ import annotations

import os
import platform
import typing

PORTABLE_THREADS = 2
r"""CPU threads of a portable run: the split of sums across threads changes their rounding."""

PORTABLE_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own kernels (elementwise, reductions)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # convolutions
    "ONEDNN_DEFAULT_FPMATH_MODE": "STRICT",  # no implicit bf16/tf32 down-conversion where a CPU offers it
    # MKL's matrix products. MKL honours its AVX2 branch on Intel CPUs only: on an AMD EPYC, MKL_VERBOSE
    # reports CNR:AUTO for MKL_CBWR=AVX2. COMPATIBLE (SSE2 without the vendor-specific rcpps/rsqrtps)
    # is reported as such there; whether an Intel CPU then computes the same bits is not measured.
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",  # MKL uses the threads it is given, not fewer by its own judgement
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's linear algebra (the head refit, the teacher)
    "OPENBLAS_L2_SIZE": "2048",  # some hosts set their own; OpenBLAS sizes some blockings from it
    "OPENBLAS_NUM_THREADS": str(PORTABLE_THREADS),  # not the machine's core count
    "NPY_ENABLE_CPU_FEATURES": "X86_V3",  # numpy's own loops: AVX2/FMA3, no AVX-512
    "SOXR_USE_SIMD": "1",  # the resampler's SSE path (every x86-64 CPU has it), whatever a user set
}
r"""Environment of the portable profile: each library capped at AVX2 or pinned."""

INFLUENCES = ("ATEN_", "DNNL_", "GOTO", "KMP_", "MKL_", "NPY_", "OMP_", "ONEDNN_", "OPENBLAS_", "SOXR_")
r"""Prefixes of environment variables that can move a library's kernels or thread split: a record names them."""

PROFILES = ("portable", "native")
r"""Values of ``--numerics``."""

_MARK = "SER_BENCHMARK_NUMERICS"


def supported(cpuinfo: str | None = None) -> str | None:
    r"""Why this machine cannot run the portable profile; ``None`` if it can.

    Args:
        cpuinfo: text of ``/proc/cpuinfo`` (default: read it)

    Examples:
        >>> supported("flags : fpu sse2 avx avx2 fma bmi1 bmi2 f16c") is None
        True
        >>> supported("flags : fpu sse2 avx")
        'this CPU has no AVX2/FMA'

    """
    if cpuinfo is None and platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the profile is for x86-64 CPUs, this is {platform.machine() or 'unknown'}"
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return "the CPU's features are unknown (no /proc/cpuinfo)"
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    if not {"avx2", "fma", "f16c", "bmi2"} <= set(flags):
        return "this CPU has no AVX2/FMA"
    return None


def active(environ: typing.Mapping[str, str] | None = None) -> bool:
    r"""Whether this process started with the portable environment.

    Examples:
        >>> active({})
        False
        >>> active({**PORTABLE_ENV, "SER_BENCHMARK_NUMERICS": "portable"})
        True

    """
    environ = os.environ if environ is None else environ
    return environ.get(_MARK) == "portable" and all(environ.get(k) == v for k, v in PORTABLE_ENV.items())


def requested(argv: typing.Sequence[str]) -> str:
    r"""The ``--numerics`` value on a distill command line (default ``portable``).

    Examples:
        >>> requested(["--epochs", "2"])
        'portable'
        >>> requested(["--numerics", "native"]), requested(["--numerics=native"])
        ('native', 'native')

    """
    value = "portable"
    for i, arg in enumerate(argv):
        if arg == "--numerics" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--numerics="):
            value = arg.split("=", 1)[1]
    return value


def restart_argv(argv: typing.Sequence[str], environ: typing.Mapping[str, str] | None = None) -> dict | None:
    r"""The environment to restart ``python -m benchmark ARGV`` with; ``None``: run as is.

    A ``distill`` command that asks for the portable profile (the default)
    restarts once with :data:`PORTABLE_ENV`, unless it already has it, the
    CPU cannot run it (then :func:`profile` records why), or it only asks
    for ``--help``.

    Examples:
        >>> restart_argv(["run", "--model", "wav2small"]) is None
        True
        >>> restart_argv(["distill", "--numerics", "native"]) is None
        True

    """
    environ = dict(os.environ if environ is None else environ)
    argv = list(argv)
    if argv[:1] != ["distill"] or requested(argv[1:]) != "portable" or {"-h", "--help"} & set(argv):
        return None
    if active(environ) or supported() is not None:
        return None
    return {**environ, **PORTABLE_ENV, _MARK: "portable"}


def current() -> str:
    r"""``'portable'`` if this process computes with the portable profile, else ``'native'``."""
    return "portable" if active() else "native"


def profile(requested_profile: str = "portable") -> dict:
    r"""What this process computes with: the record a distillation keeps.

    Examples:
        >>> profile("native")["reason"] if not active() else "--numerics native"
        '--numerics native'

    """
    machine = {"cpu": cpu_model(), "inherited_env": inherited()}
    if active():
        return {"profile": "portable", "env": dict(PORTABLE_ENV), "threads": PORTABLE_THREADS, **machine}
    if requested_profile == "native":
        return {"profile": "native", "reason": "--numerics native", **machine}
    why = supported() or "the process was not started by `python -m benchmark distill` (the settings apply at start)"
    return {"profile": "native", "reason": f"portable requested, but {why}", **machine}


def inherited(environ: typing.Mapping[str, str] | None = None) -> dict[str, str]:
    r"""Variables of :data:`INFLUENCES` that this process has and the profile does not set.

    Examples:
        >>> inherited({"OMP_NUM_THREADS": "1", "MKL_CBWR": "COMPATIBLE", "HOME": "/root"})
        {'OMP_NUM_THREADS': '1'}

    """
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in sorted(environ) if k.startswith(INFLUENCES) and k not in PORTABLE_ENV}


def cpu_model(cpuinfo: str | None = None) -> str:
    r"""The CPU's vendor and model name, as ``/proc/cpuinfo`` gives them (``'unknown'`` without one).

    Examples:
        >>> cpu_model("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t: avx2")
        'AuthenticAMD: AMD EPYC'

    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return platform.processor() or "unknown"
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return ": ".join(v for v in (fields.get("vendor_id"), fields.get("model name")) if v) or "unknown"
