"""run_train.py reads as its steps: a short main() with numbered sections in order, helpers in a package that
`pip install .` ships, and every import at the top of its module."""

import ast
import configparser
import inspect
import re
from pathlib import Path

import run_train

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "simple_vit_training"
STEPS = ["arguments", "accelerator", "data", "model", "optimizer", "loop", "final save"]


def test_main_is_short_and_its_sections_are_the_steps_in_order():
    source = inspect.getsource(run_train.main)
    assert len(source.splitlines()) <= 120
    sections = re.findall(r"^\s*# (\d+)\. (.+)$", source, flags=re.MULTILINE)
    assert [int(number) for number, _ in sections] == list(range(1, len(STEPS) + 1)), sections
    for (_, title), step in zip(sections, STEPS):
        assert title.lower().startswith(step), (title, step)


def test_imports_are_at_module_top():
    for path in [ROOT / "run_train.py", *sorted(PACKAGE.glob("*.py"))]:
        tree = ast.parse(path.read_text())
        nested = [f"{path.name}:{node.lineno}" for function in ast.walk(tree)
                  if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not nested, nested


def test_the_package_is_installed_with_the_scripts():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "simple_vit_training" in setup["options"]["packages"].split()
    assert "run_train" in setup["options"]["py_modules"].split()
    # The Hub files stay free of it: a model loaded as remote code must not need the training package.
    for name in ("modeling_simple_vit.py", "configuration_simple_vit.py"):
        assert "simple_vit_training" not in (ROOT / name).read_text()
