"""Re-run notebooks/attention_maps.ipynb top to bottom and save it with its outputs, as it is committed.

    python tools/execute_notebook.py [--dataset ../../shared/datasets/cifar10]

The committed outputs come from the committed model (results/seed-config, the notebook's default checkpoint) on the
first test images of the dataset given (a path relative to notebooks/, or a Hub id), with the Hub offline.
tests/test_attention_maps.py re-runs a copy the same way and checks that it prints what the saved one shows.
"""

import argparse
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "attention_maps.ipynb"


def execute(path: Path, timeout: int = 600):
    """The notebook at `path`, its saved outputs stripped, run top to bottom in notebooks/ (where it finds
    attention_maps.py) with this process's environment; returned run, the file left as it is."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(notebook, kernel_name="python3", timeout=timeout,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()  # raises if a cell fails
    return notebook


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="../../shared/datasets/cifar10",
                        help="SIMPLE_VIT_DATASET for the run (default: the local CIFAR-10 copy, seen from notebooks/)")
    args = parser.parse_args()

    # The kernel inherits this environment (as in the tests): the default checkpoint, this dataset, no Hub.
    os.environ.pop("SIMPLE_VIT_CHECKPOINT", None)
    os.environ.update(SIMPLE_VIT_DATASET=args.dataset, HF_HUB_OFFLINE="1")
    os.environ.pop("MPLBACKEND", None)
    notebook = execute(NOTEBOOK)
    # Written whole, then renamed: an interrupted run leaves the committed notebook as it was.
    partial = NOTEBOOK.with_suffix(".ipynb.partial")
    nbformat.write(notebook, partial)
    os.replace(partial, NOTEBOOK)
    print(f"{NOTEBOOK.relative_to(NOTEBOOK.parents[1])}: {NOTEBOOK.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
