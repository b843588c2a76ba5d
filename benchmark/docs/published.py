"""Published numbers (``benchmark/reported.yaml``) and how the measured ones compare, on the leaderboard."""

from __future__ import annotations

from benchmark import DIMENSIONS
from benchmark.docs.formatting import DASH, float_or_none, fmt3, fmt_ccc, md_table, sha8
from benchmark.docs.inputs import Inputs


def reported_section(inputs: Inputs) -> str:
    r"""Published numbers, never mixed into the measured tables."""
    parts = [
        "## Published numbers (not measured by this benchmark)",
        "CCC as reported in the cited publications, on the real corpora, with the authors' "
        "own pipelines and corpus releases; copied into `benchmark/reported.yaml`. Values "
        "marked *unverified* could not be checked against the primary source.",
    ]
    if not inputs.reported:
        parts.append("*No published numbers recorded in `benchmark/reported.yaml`.*")
        return "\n\n".join(parts)
    parts.append(reported_table(inputs.reported, inputs.sources))
    parts.append(sources_list(inputs.sources, inputs.reported))
    parts.append(reproduced_section(inputs))
    return "\n\n".join(p for p in parts if p)


def reported_table(entries: list[dict], sources: dict[str, dict]) -> str:
    r"""Table of published CCC per entry of ``reported.yaml``, with its source and whether it was verified."""
    table = []
    for e in entries:
        values = e.get("ccc") or {}
        source = sources.get(e.get("source"), {})
        cite = source.get("short") or source.get("citation") or str(e.get("source", ""))
        if source.get("url"):
            cite = f"[{cite}]({source['url']})"
        table.append(
            [
                e.get("label", ""),
                ", ".join(e.get("models") or []) or DASH,
                f"{e.get('corpus', e.get('dataset', ''))} · {e.get('split', '')}",
                *[fmt3(values.get(d)) for d in DIMENSIONS],
                cite,
                "verified" if e.get("verified") else "*unverified*",
            ]
        )
    headers = [
        "model (as published)",
        "registry name",
        "corpus · split",
        *[f"{d} CCC" for d in DIMENSIONS],
        "source",
        "status",
    ]
    return md_table(headers, table, "lll" + "rrr" + "ll")


def sources_list(sources: dict[str, dict], entries: list[dict]) -> str:
    r"""Full citations of the sources the published numbers come from."""
    used = [key for key in dict.fromkeys(e.get("source") for e in entries) if key in sources]
    items = []
    for key in used:
        source = sources[key]
        label = source.get("short", key)
        label = f"[{label}]({source['url']})" if source.get("url") else label
        items.append(f"- {label}: {source.get('citation', key)}")
    return "Sources:\n\n" + "\n".join(items) if items else ""


def reproduced_section(inputs: Inputs) -> str:
    r"""Published vs measured, only where the real corpus and split were benchmarked."""
    ccc = inputs.latest("correctness")
    table = []
    for e in inputs.reported:
        for model in e.get("models") or []:
            sub = (
                ccc[(ccc["model"] == model) & (ccc["dataset"] == e.get("dataset")) & (ccc["split"] == e.get("split"))]
                if len(ccc)
                else ccc
            )
            for _, r in sub.sort_values(["dataset_version", "dimension"]).iterrows() if len(sub) else []:
                published = float_or_none((e.get("ccc") or {}).get(r["dimension"]))
                if published is None:
                    continue
                measured = float_or_none(r["ccc"])
                diff = DASH if measured is None else fmt3(measured - published)
                table.append(
                    [
                        e.get("label", ""),
                        f"[{model}](models/{model}.md)",
                        sha8(r["model_sha256"]),
                        f"{r['dataset']} {r['dataset_version']} · {r['split']}",
                        r["dimension"],
                        fmt3(published),
                        fmt_ccc(r["ccc"], r.get("ccc_ci_low"), r.get("ccc_ci_high")),
                        diff,
                    ]
                )
    heading = "### Reported vs reproduced"
    if not table:
        return (
            f"{heading}\n\n*No results on the real corpora for these models yet; "
            "demo-data results are not comparable and are not compared.*"
        )
    headers = [
        "published model",
        "model",
        "sha256",
        "dataset · split",
        "dimension",
        "published",
        "measured CCC [95% CI]",
        "measured − published",
    ]
    return f"{heading}\n\n" + md_table(headers, table, "lllllrrr") + "\n\n*Measured values: `results/correctness.csv`.*"
