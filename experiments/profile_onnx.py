"""Where an ONNX model spends its time: onnxruntime's profiler on one thread, per operator type and per node.

Usage (from the repository root)::

    python experiments/profile_onnx.py weights/wav2small [--seconds 5] [--runs 20] [--top 15]

Runs the model on a seeded noise clip (as ``benchmark efficiency`` does)
with the default graph optimisations, ``--runs`` times after 3 warm-up
runs, and prints Markdown tables: milliseconds per operator type and for
the ``--top`` slowest nodes, each the median over the runs (robust to
the odd run slowed by other work on the machine), with the node's output
shape and, for convolutions and matrix products, the multiply-adds the
node's own weights imply. Node names are those of the optimised graph:
onnxruntime fuses BatchNorm and ReLU into convolutions and, on CPUs with
AVX-512 or AVX2, reorders convolutions into its blocked ``NCHWc`` layout
(``*_nchwc`` nodes, channels rounded up to the block size).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import typing
from pathlib import Path

import numpy as np

from benchmark import FRONTEND_SCOPE, noise_clip, onnx_file

SAMPLING_RATE = 16000


def profile(model: str, seconds: float, runs: int) -> dict[str, dict]:
    r"""Per node of the optimised graph: op type, output shapes and the kernel time of every run (ms)."""
    import onnxruntime

    with tempfile.TemporaryDirectory() as tmp:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = onnxruntime.InferenceSession(str(onnx_file(model)), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: noise_clip(seconds)[np.newaxis]}
        warmup_runs = 3
        for _ in range(warmup_runs + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, dict] = {}
    run = -1
    for event in events:
        if event.get("cat") == "Session" and event["name"] == "model_run":
            run += 1
        elif event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and run >= warmup_runs:
            name = event["name"][: -len("_kernel_time")]
            node = nodes.setdefault(name, {"op": event["args"]["op_name"], "shape": "", "ms": []})
            node["shape"] = _shapes(event["args"].get("output_type_shape", []))
            node["ms"].append(event["dur"] / 1000.0)
    return nodes


def _shapes(types: list[dict]) -> str:
    return ", ".join("×".join(str(d) for d in shape) for entry in types for shape in entry.values())


def multiply_adds(model: str, seconds: float) -> dict[str, int]:
    r"""Multiply-adds per ``Conv``/``MatMul``/``Gemm`` node of the unoptimised graph, on a clip of ``seconds``."""
    import onnx
    import onnxruntime

    graph_model = onnx.load(str(onnx_file(model)))
    graph = graph_model.graph
    weights = {t.name: list(t.dims) for t in graph.initializer}
    for node in graph.node:
        values = [a.t for a in node.attribute if a.name == "value"]
        if node.op_type == "Constant" and values:
            weights[node.output[0]] = list(values[0].dims)
    counted = [n for n in graph.node if n.op_type in ("Conv", "ConvInteger", "MatMul", "MatMulInteger", "Gemm")]
    outputs = {o.name for o in graph.output}
    # every counted node's output and right-hand operand become graph outputs, to read their shapes
    wanted = {n.output[0] for n in counted} | {n.input[1] for n in counted if n.input[1] not in weights}
    for name in sorted(wanted - outputs - {i.name for i in graph.input}):
        graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(graph_model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = session.run(None, {session.get_inputs()[0].name: noise_clip(seconds)[np.newaxis]})
    shapes = {o.name: v.shape for o, v in zip(session.get_outputs(), values)}
    result = {}
    for node in counted:
        right = weights.get(node.input[1]) or list(shapes[node.input[1]])
        if node.op_type.startswith("Conv"):
            per_output = int(np.prod(right[1:]))
        else:
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
            per_output = right[-1] if transposed else right[-2]
        result[node.name] = int(np.prod(shapes[node.output[0]])) * per_output
    return result


def tables(nodes: dict[str, dict], top: int) -> str:
    r"""Markdown: median ms per operator type, then the ``top`` slowest nodes."""
    medians = {name: float(np.median(node["ms"])) for name, node in nodes.items()}
    total = sum(medians.values())
    by_op: dict[str, float] = collections.defaultdict(float)
    for name, node in nodes.items():
        by_op[node["op"]] += medians[name]
    lines = ["| operator | ms | share |", "|---|---:|---:|"]
    lines += [f"| {op} | {ms:.2f} | {ms / total:.1%} |" for op, ms in sorted(by_op.items(), key=lambda kv: -kv[1])]
    lines += [f"| **all** | **{total:.2f}** | |", "", "| node | operator | output | ms |", "|---|---|---|---:|"]
    slowest = sorted(medians, key=lambda name: -medians[name])[:top]
    lines += [f"| `{name}` | {nodes[name]['op']} | {nodes[name]['shape']} | {medians[name]:.2f} |" for name in slowest]
    return "\n".join(lines)


def main(argv: typing.Sequence[str] | None = None) -> int:
    r"""Command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model folder (with model.onnx) or .onnx file")
    parser.add_argument("--seconds", type=float, default=5.0, help="clip length (default: 5)")
    parser.add_argument("--runs", type=int, default=20, help="profiled runs after 3 warm-up runs (default: 20)")
    parser.add_argument("--top", type=int, default=15, help="slowest nodes to list (default: 15)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.seconds <= 0:
        parser.error("--runs must be at least 1 and --seconds positive.")
    try:
        onnx_file(args.model)
    except FileNotFoundError as error:
        parser.error(str(error))
    print(tables(profile(args.model, args.seconds, args.runs), args.top))
    macs = multiply_adds(args.model, args.seconds)
    frontend = sum(v for name, v in macs.items() if name.startswith(FRONTEND_SCOPE))
    print(
        f"\nmultiply-adds per {args.seconds:g} s clip: {sum(macs.values()) / 1e6:.1f} M "
        f"(front end {frontend / 1e6:.1f} M, the rest {(sum(macs.values()) - frontend) / 1e6:.1f} M)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
