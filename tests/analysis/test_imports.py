"""``analysis`` stands on its own: results and a resolved spec in, a report out. No module under
analysis/ imports the runner, monetk, Keras or torch, directly or through another module."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("monetk_runner", "monetk", "keras", "torch")


def _imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_under_analysis_imports_the_runner_monetk_keras_or_torch():
    modules = sorted((ROOT / "analysis").rglob("*.py"))
    assert modules
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported(path) & set(FORBIDDEN)) for path in modules
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_analysis_command_loads_none_of_them():
    code = (
        "import sys, analysis, analysis.__main__, analysis.resolved_spec\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & {set(FORBIDDEN)!r})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
