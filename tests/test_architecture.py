"""The layering rules hold for ``benchmark/``, and their checker finds each kind of breach."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmark.paths import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("check_architecture", PROJECT_ROOT / "scripts" / "check_architecture.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def package(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"__init__.py": "", **files}.items():
        (root / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / name).write_text(text)
    return root / "pkg"


def test_the_package_keeps_the_rules():
    assert check.problems(PROJECT_ROOT / "benchmark") == []


def test_a_clean_package_passes(tmp_path):
    pkg = package(tmp_path, {"a.py": "from pkg import b\n", "b.py": "VALUE = 1\n"})
    assert check.problems(pkg) == []


def test_a_lazy_import_cycle_is_found(tmp_path):
    pkg = package(
        tmp_path,
        {"a.py": "from pkg.b import x\n", "b.py": "def x():\n    from . import c\n", "c.py": "import pkg.a\n"},
    )
    assert check.problems(pkg) == ["import cycle: pkg.a ↔ pkg.b ↔ pkg.c"]


def test_a_private_import_from_another_module_is_found(tmp_path):
    pkg = package(
        tmp_path, {"a.py": "def _helper():\n    pass\n", "sub/__init__.py": "", "sub/b.py": "from ..a import _helper\n"}
    )
    (found,) = check.problems(pkg)
    assert found.endswith("b.py:1: imports private name _helper from pkg.a")


def test_oversized_modules_and_functions_are_found(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(check.MAX_FUNCTION_LINES))
    pkg = package(
        tmp_path,
        {
            "long.py": f"def long():\n{body}",
            "fits.py": f"def fits():\n{body[: body.rindex('    x')]}",
            "big.py": "X = 1\n" * (check.MAX_MODULE_LINES + 1),
        },
    )
    found = check.problems(pkg)
    assert len(found) == 2
    assert any(f"function long has {check.MAX_FUNCTION_LINES + 1} lines" in line for line in found)
    assert any(f"big.py: {check.MAX_MODULE_LINES + 1} lines" in line for line in found)
