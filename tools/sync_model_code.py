"""Keep the model code inside results/ equal to the project's top-level model code.

    python tools/sync_model_code.py            # update every copy, drop the stray ones, print what changed
    python tools/sync_model_code.py --check    # change nothing; list what is out of date, exit 1 if anything is

`save_pretrained` writes the model's code files next to its weights (that is what lets
`from_pretrained(..., trust_remote_code=True)` load a folder), so every committed model folder freezes the code
of the day it was trained. Those copies drift as the top-level files change, and a folder that loads through an
old copy no longer shows what the project's code does. So each folder under results/ that holds weights
(`model.safetensors`) carries exactly the top-level files, and a folder without weights (metrics and figures
only) carries no code at all. The code files are `modeling_simple_vit.py` and whatever it imports relatively
(found the way `transformers` itself finds them, so a new helper module is picked up without editing this list).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from transformers.dynamic_module_utils import get_relative_import_files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python tools/sync_model_code.py`, the project's own modules are one level up
from cli import OneLineArgumentParser  # noqa: E402

MODELING_FILE = "modeling_simple_vit.py"
WEIGHTS = "model.safetensors"


def code_files(source):
    """Names of the files a model folder needs besides its weights: the modeling file and its relative imports."""
    modeling = source / MODELING_FILE
    return sorted({MODELING_FILE, *(Path(path).name for path in get_relative_import_files(modeling))})


def plan(source, results):
    """(action, folder file, top-level file or None) for every copy that is not what it should be.

    action is "update" (a model folder's copy is missing or differs) or "remove" (a Python file where none
    belongs: any in a folder without weights, or one the top-level model code no longer has)."""
    names = code_files(source)
    actions = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        wanted = names if (folder / WEIGHTS).is_file() else []
        for name in wanted:
            top = source / name
            if not (folder / name).is_file() or (folder / name).read_bytes() != top.read_bytes():
                actions.append(("update", folder / name, top))
        actions += [("remove", path, None) for path in sorted(folder.glob("*.py")) if path.name not in wanted]
    return actions


def copy_atomically(src, dst):
    """Write dst as a complete copy of src or not at all (a crash mid-copy leaves the old file in place)."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(src.read_bytes())
        shutil.copymode(src, tmp)  # mkstemp makes the file private (0600); the copy gets the source's mode
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None):
    parser = OneLineArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing every stale copy")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="the folder of runs (default: %(default)s)")
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the folder holding the top-level model code (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        parser.error(f"--results {args.results} is not a folder")
    if not (args.source / MODELING_FILE).is_file():
        parser.error(f"--source {args.source} has no {MODELING_FILE}")

    actions = plan(args.source, args.results)
    for action, path, top in actions:
        where = path.relative_to(args.results.parent)
        if args.check:
            print(f"stale: {where}" if action == "update" else f"stray: {where}")
        elif action == "update":
            copy_atomically(top, path)
            print(f"updated {where}")
        else:
            path.unlink()
            print(f"removed {where}")
    if args.check and actions:
        print(f"{len(actions)} code copies under {args.results.name}/ are out of date: "
              f"run python tools/sync_model_code.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
