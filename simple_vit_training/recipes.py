"""Recipes: named sets of training settings, one JSON file each under configs/recipes/.

A recipe file is a JSON object whose keys are run_train.py options (their argparse names: `batch_size`, `lr`,
`model_config`, ...) plus an optional one-line `description`. `--recipe NAME` reads configs/recipes/NAME.json,
`--recipe path/to/file.json` any file; its values become the parser's defaults, so explicit flags still win.
"""

import argparse
import json
from pathlib import Path

from cli import CLIError

from . import PROJECT_ROOT
from .model_config import resolve_project_path

RECIPES_DIR = PROJECT_ROOT / "configs" / "recipes"
DEFAULT_RECIPE = "tutorial"
# Options that say what to do with this one run rather than how to train: a recipe cannot set them.
NOT_IN_RECIPES = frozenset({"help", "recipe", "resume_from_checkpoint", "print_config", "with_tracking"})


def recipe_names() -> list:
    return sorted(path.stem for path in RECIPES_DIR.glob("*.json"))


def recipe_file(recipe: str) -> Path:
    """The file behind --recipe: a shipped recipe's name, or a path to a JSON file."""
    if recipe.endswith(".json") or "/" in recipe or "\\" in recipe:
        path = resolve_project_path(recipe)
        if not path.is_file():
            raise CLIError(f"--recipe file not found: {recipe}")
        return path
    path = RECIPES_DIR / f"{recipe}.json"
    if not path.is_file():
        raise CLIError(f"unknown --recipe {recipe!r}: choose one of {', '.join(recipe_names())}, or give a .json file")
    return path


def read_recipe(recipe: str) -> dict:
    """The recipe's JSON object as written (its description included), checked to be an object."""
    path = recipe_file(recipe)
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CLIError(f"--recipe {path} is not valid JSON: {err}") from None
    if not isinstance(values, dict):
        raise CLIError(f"--recipe {path} must hold a JSON object of run_train.py settings")
    return values


def describe_recipes() -> str:
    """`name (description)` for every shipped recipe, for --help."""
    return "; ".join(f"{name} ({read_recipe(name).get('description', '')})" for name in recipe_names())


def recipe_defaults(recipe: str, parser: argparse.ArgumentParser) -> dict:
    """The recipe's settings as parser defaults, each checked and converted as the option's flag would be."""
    values = {key: value for key, value in read_recipe(recipe).items() if key != "description"}
    actions = {}
    for action in parser._actions:  # an option's first action (a deprecated alias may share its dest)
        if action.dest not in NOT_IN_RECIPES:
            actions.setdefault(action.dest, action)
    unknown = sorted(set(values) - set(actions))
    if unknown:
        raise CLIError(f"unknown setting(s) in --recipe {recipe}: {', '.join(unknown)}; "
                       f"known: {', '.join(sorted(actions))}")
    return {key: _convert(actions[key], value, recipe) for key, value in values.items()}


def _convert(action, value, recipe):
    """A recipe value as the option's flag would give it (type and choices checked), or a one-line CLIError."""
    where = f"--recipe {recipe}: {action.dest}"
    if value is None:
        # null means "not set" only where the option itself defaults to not set (e.g. model_config, max_grad_norm).
        if action.default is not None:
            raise CLIError(f"{where} cannot be null")
        return None
    if action.nargs == 0:  # a switch such as --compile
        if not isinstance(value, bool):
            raise CLIError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, (dict, list, bool)) or (action.type is None and not isinstance(value, str)):
        raise CLIError(f"{where} must be a {'string' if action.type is None else 'number'}, got {value!r}")
    if action.type is not None:
        try:
            # Through the option's own type, from the text a user would type: 2.5 for an integer option fails
            # instead of being truncated, and the range checks of the option apply.
            value = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError) as err:
            raise CLIError(f"{where}: invalid value {value!r} ({err})") from None
    if action.choices is not None and value not in action.choices:
        raise CLIError(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value
