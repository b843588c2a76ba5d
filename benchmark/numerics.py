"""Portable numerics: the same training bits on any x86-64 CPU with AVX2.

torch, oneDNN, MKL, numpy and OpenBLAS each pick their vector kernels by
CPU at run time. The kernels round differently, and training amplifies
the last bits: the same distillation on an Intel Xeon (AVX-512, AMX) and
on an AMD EPYC ended at different networks. The *portable* profile caps
every one of those libraries at its AVX2 path, which every x86-64 CPU of
the last decade runs, and fixes the number of CPU threads, so a given
seed and recipe give the same weights on any such machine
(``docs/research/portable-numerics.md``).

The libraries read these settings once, when they load, so they must be
in the environment before Python starts: ``python -m benchmark distill``
restarts itself with them (:func:`restart_argv`). A run started another
way (e.g. ``main()`` called in-process) computes with the machine's own
kernels and records that (:func:`profile`).
"""

from __future__ import annotations

import os
import platform
import typing

PORTABLE_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own kernels (elementwise, reductions)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # convolutions
    "MKL_CBWR": "AVX2",  # matrix products: MKL's reproducible AVX2 branch
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's linear algebra (the head refit)
    "NPY_ENABLE_CPU_FEATURES": "X86_V3",  # numpy's own loops: AVX2/FMA3, no AVX-512
}
r"""Environment of the portable profile: each library capped at AVX2."""

PORTABLE_THREADS = 2
r"""CPU threads of a portable run: the split of sums across threads changes their rounding."""

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
    if active():
        return {"profile": "portable", "env": dict(PORTABLE_ENV), "threads": PORTABLE_THREADS}
    if requested_profile == "native":
        return {"profile": "native", "reason": "--numerics native"}
    why = supported() or "the process was not started by `python -m benchmark distill` (the settings apply at start)"
    return {"profile": "native", "reason": f"portable requested, but {why}"}
