"""The house rules beside import-linter's contracts (pyproject.toml, run by `make lint`): small modules, and the
no-cycles contract really covers deferred imports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lcm_desktop", "convert")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _acyclic_contract(pyproject: Path) -> dict:
    contracts = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    [contract] = [c for c in contracts if c["type"] == "acyclic_siblings"]
    return contract


def test_no_import_cycles_is_a_contract_over_both_packages():
    contract = _acyclic_contract(ROOT / "pyproject.toml")
    assert sorted(contract["ancestors"]) == sorted(PACKAGES)
    assert "skip_descendants" not in contract and "ignore_imports" not in contract  # every level, no exceptions


def test_the_contract_catches_a_cycle_through_a_deferred_import(tmp_path):
    """Our contract, on a package whose only cycle is an import inside a function: lint-imports fails."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for init in (package / "__init__.py", package / "sub" / "__init__.py"):
        init.write_text("")
    (package / "sub" / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def later():\n    from pkg.sub import a\n\n    return a\n")
    contract = _acyclic_contract(ROOT / "pyproject.toml")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["pkg"]\n\n[[tool.importlinter.contracts]]\n'
        f'name = "cycles"\ntype = "{contract["type"]}"\nancestors = ["pkg"]\n', encoding="utf-8")
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path), "PATH": ""}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "No cycles are allowed in pkg.sub" in proc.stdout and "- .b -> .a (1 import)" in proc.stdout, proc.stdout


def test_no_module_over_400_lines():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
