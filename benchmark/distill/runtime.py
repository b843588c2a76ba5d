"""Where and how a distillation computes: device, precision, threads, processes (torchrun)."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os

import torch
import torch.distributed as dist

from benchmark import numerics
from benchmark.distill.config import PRECISIONS, DistillConfig, DistillError


@dataclasses.dataclass(frozen=True)
class Environment:
    r"""Where a run computes (:func:`start`).

    Attributes:
        rank: this process under torchrun (0: the only one, or the one that writes)
        world_size: processes under torchrun (1 without)
        local_rank: this process's GPU index on its machine
        device: torch device of the training
        threads: torch CPU threads of this process
        numerics: the kernels it computes with (:func:`benchmark.numerics.profile`)

    """

    rank: int
    world_size: int
    local_rank: int
    device: str
    threads: int
    numerics: dict


def start(config: DistillConfig) -> Environment:
    r"""Set up the process for a run: process group, device, deterministic kernels, memory, threads."""
    rank, world_size, local_rank = _init_distributed()
    device = _device(config.device, local_rank)
    _deterministic(device)
    keep_freed_memory()
    kernels = numerics.profile(config.numerics)
    if config.numerics == "portable" and kernels["profile"] != "portable":
        print(f"--numerics: {kernels['reason']}; this run computes with the CPU's own kernels.", flush=True)
    portable = kernels["profile"] == "portable" and device == "cpu"
    threads = config.threads or (numerics.PORTABLE_THREADS if portable else max(1, (os.cpu_count() or 1) // world_size))
    torch.set_num_threads(threads)
    return Environment(rank, world_size, local_rank, device, threads, kernels)


def stop(env: Environment) -> None:
    r"""Wait for every process, then leave the process group (no-op without torchrun)."""
    barrier(env.world_size)
    _shutdown_distributed(env.world_size)


def _device(requested: str, local_rank: int) -> str:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise DistillError("--device cuda: no CUDA device is available; use --device cpu or auto.")
        return f"cuda:{local_rank}"
    return requested


def native_bf16(device: str) -> bool:
    r"""Whether ``device`` computes bfloat16 in hardware (AMX or AVX-512 BF16 on a CPU).

    Elsewhere bf16 is emulated and slower than float32.

    Examples:
        >>> isinstance(native_bf16("cpu"), bool)
        True

    """
    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("amx_bf16") or capabilities.get("avx512_bf16"))


def check_precision(precision: str, device: str) -> None:
    r"""Refuse a training precision ``device`` cannot run; note an emulated one.

    bf16 autocast makes a Wav2Small training step 1.6-1.9× faster on an
    Intel Xeon with AMX, but it is not the default: on the demo pool it
    ends lower than float32 with the same number of epochs (held-out mean
    CCC vs the teacher 0.722 instead of 0.739 after 7 epochs), and 10 bf16
    epochs (the same wall time as 7 in float32) reach only 0.721
    (``docs/distillation.md``).

    Raises:
        DistillError: for an unknown value, or bf16 on a CUDA device without bfloat16

    Examples:
        >>> check_precision("fp32", "cpu")

    """
    if precision not in PRECISIONS:
        raise DistillError(f"--precision {precision}: use one of {', '.join(PRECISIONS)}.")
    if precision != "bf16" or native_bf16(device):
        return
    if device.startswith("cuda"):
        raise DistillError("--precision bf16: this CUDA device has no bfloat16 support; use --precision fp32.")
    print(
        "--precision bf16: this CPU has no bfloat16 instructions (AMX or AVX-512 BF16); "
        "bf16 is emulated and slower than fp32.",
        flush=True,
    )


def _deterministic(device: str) -> None:
    r"""Ask torch for deterministic kernels (bit-identical on the CPU; best effort on CUDA)."""
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def keep_freed_memory() -> bool:
    r"""Stop glibc from returning freed memory to the system; ``True`` if it took effect.

    A training step allocates and frees activations of 100+ MB. glibc
    serves blocks that large with ``mmap`` and unmaps them on ``free``, so
    every step faults in fresh zeroed pages again: on the 2-core demo
    machine a third of the distillation's CPU time went to the kernel.
    Raising the mmap and trim thresholds keeps those pages in the heap for
    the next step (measured: 23.1 s → 15.6 s wall for 12 Wav2Small steps,
    kernel time 14.5 s → 1.3 s). The process keeps its peak memory, which
    it needs again at the next step anyway. No effect (and ``False``)
    outside glibc; numbers are unaffected.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    limit = ctypes.c_int(2**31 - 1)
    return bool(mallopt(m_mmap_threshold, limit)) and bool(mallopt(m_trim_threshold, limit))


def _init_distributed() -> tuple[int, int, int]:
    r"""``(rank, world_size, local_rank)``; initialises the process group under torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return dist.get_rank(), world_size, local_rank


def barrier(world_size: int) -> None:
    r"""Wait for every process under torchrun (no-op without)."""
    if world_size > 1:
        dist.barrier()


def _shutdown_distributed(world_size: int) -> None:
    if world_size > 1:
        dist.destroy_process_group()
