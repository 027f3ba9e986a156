"""Recipes are files (configs/recipes/NAME.json): each one parses, sets real options, and a bad one is one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli import CLIError
from run_train import build_parser, parse_args
from simple_vit_training.model_config import load_model_config_overrides
from simple_vit_training.recipes import RECIPES_DIR, read_recipe, recipe_names

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(RECIPES_DIR.glob("*.json"))


def test_the_shipped_recipes_are_the_recipe_choices():
    assert recipe_names() == [
        "conv-tokenizer-100", "conv-tokenizer-wide-100", "improved", "improved-100", "improved-20", "improved-40",
        "tutorial", "tutorial-size-100"
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_recipe_sets_exactly_what_it_says(path):
    settings = {k: v for k, v in json.loads(path.read_text()).items() if k != "description"}
    options = {action.dest for action in build_parser()._actions}
    assert set(settings) <= options
    args = parse_args(["--recipe", path.stem])
    assert {key: getattr(args, key) for key in settings} == settings
    # The same file named by its path gives the same arguments (apart from how the recipe was named).
    by_path = vars(parse_args(["--recipe", str(path)]))
    assert {**by_path, "recipe": path.stem} == vars(args)
    # Its model settings are a valid model-config file (or none: the default model).
    if settings["model_config"] is not None:
        assert load_model_config_overrides(settings["model_config"])


def test_every_recipe_sets_the_same_training_settings():
    # Side by side, each recipe file answers the same questions (none leaves one to another recipe's value).
    keys = {path.stem: set(json.loads(path.read_text())) for path in SHIPPED}
    assert len({frozenset(k) for k in keys.values()}) == 1, keys


def test_the_tutorial_recipe_is_the_parsers_own_defaults():
    # The built-in defaults are the tutorial's settings; only its model config is the recipe's own.
    parser = build_parser()
    tutorial = {k: v for k, v in read_recipe("tutorial").items() if k not in ("description", "model_config")}
    assert {key: parser.get_default(key) for key in tutorial} == tutorial
    assert parse_args([]).model_config == "configs/tutorial.json" == read_recipe("tutorial")["model_config"]


def test_a_recipe_file_anywhere_and_flags_override_it(tmp_path):
    recipe = tmp_path / "mine.json"
    recipe.write_text(json.dumps({"description": "a test", "epochs": 3, "lr": 5e-4, "warmup_epochs": 2,
                                  "augmentation": "pad-crop", "compile": True}))
    args = parse_args(["--recipe", str(recipe)])
    assert (args.epochs, args.lr, args.augmentation, args.compile, args.recipe) == (3, 5e-4, "pad-crop", True,
                                                                                  str(recipe))
    assert args.warmup_epochs == 2.0 and isinstance(args.warmup_epochs, float)  # as the flag would give it
    assert args.batch_size == 256  # not in the file: the built-in default
    assert parse_args(["--recipe", str(recipe), "--epochs", "7"]).epochs == 7
    assert parse_args(["--epochs", "7", f"--recipe={recipe}"]).epochs == 7  # wherever the flags stand


def test_build_parser_does_not_parse(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["run_train.py", "--no-such-option"])
    parser = build_parser()
    assert parser.get_default("recipe") == "tutorial"
    assert parser.parse_args(["--lr", "0.5"]).lr == 0.5


@pytest.mark.parametrize(
    "content, expected",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"epocs": 5}', "unknown setting(s) in --recipe"),
        ('{"resume_from_checkpoint": "latest"}', "unknown setting(s)"),
        ('{"batch_size": 2.5}', "batch_size"),
        ('{"epochs": 0}', "must be at least 1"),
        ('{"lr_scheduler": "cosin"}', "not one of"),
        ('{"lr": null}', "cannot be null"),
        ('{"lr": "fast"}', "lr"),
        ('{"compile": "yes"}', "true or false"),
        ('{"model_config": 3}', "must be a string"),
    ],
)
def test_bad_recipe_file_is_a_clear_error(tmp_path, content, expected):
    recipe = tmp_path / "bad.json"
    recipe.write_text(content)
    with pytest.raises(CLIError, match="--recipe") as error:
        parse_args(["--recipe", str(recipe)])
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "recipe, expected",
    [("improved-50", "unknown --recipe 'improved-50': choose one of conv-tokenizer-100, "
                     "conv-tokenizer-wide-100, improved, improved-100, improved-20, improved-40, tutorial, "
                     "tutorial-size-100, or give a .json file"),
     ("no/such/recipe.json", "--recipe file not found: no/such/recipe.json")],
)
def test_unknown_recipe_is_one_line_without_traceback(tmp_path, recipe, expected):
    result = subprocess.run([sys.executable, str(ROOT / "run_train.py"), "--recipe", recipe, "--output-dir",
                             str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not (tmp_path / "out").exists()  # nothing was started
