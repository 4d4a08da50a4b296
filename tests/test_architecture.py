"""The core's import contracts (pyproject.toml, [tool.importlinter]) hold, and they catch an upward import
even inside a function, where every import cycle this project once had was hidden, and an import of Ray
outside the cluster's own modules."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_DIR

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """lint-imports on the project at `root`; a process of its own, so that `core` is found there and not in
    this process's imported modules."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_core_keeps_its_layers():
    result = lint_imports(PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


# Each plants one of the old cycles back, as an import inside a function.
@pytest.mark.parametrize("module, upward", [
    ("core/features/blocks.py", "core.training.trainer"),  # run_batches lived in the trainer
    ("core/backbones/bundled.py", "core.features.blocks"),  # the pooled-blocks model lived in the analysis
    ("core/data/sources.py", "core.health"),  # the scan asked the health checks
    ("core/data/augment.py", "core.backbones"),  # TensorFlow's loader lived in the backbones
    ("core/model/rejection.py", "core.health.duplicates"),  # unit_rows was shared the wrong way round
    ("core/data/overrides.py", "core.data.scan"),  # the scan and the corrections imported each other
    ("core/health/odd.py", "core.analysis"),  # analysis and health stay independent of each other
    ("core/fileio.py", "core.data.decode"),  # the modules at core's top sit below every package
    ("core/runs/sweeps.py", "ray"),  # Ray stays in the cluster's own modules: without an address it never loads
])
def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path, module, upward):
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "core", copy / "core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_DIR / "pyproject.toml", copy)
    with open(copy / module, "a") as f:
        f.write(f"\n\ndef _planted():\n    import {upward}  # noqa: F401\n")
    result = lint_imports(copy)
    assert result.returncode == 1, result.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    package = importer.rpartition(".")[0]
    found = f"{importer} -> {upward}" in result.stdout or f"No cycles are allowed in {package}." in result.stdout
    assert found, result.stdout
