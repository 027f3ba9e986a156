"""The README says what the repository holds: one section per topic, and every accuracy in the Results table is
the final-epoch accuracy recorded in the `metrics.json` of the folder that row names."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def results_rows():
    """(folder, stated accuracy in %) for each row of the README's Results table that names a results/ folder."""
    section = README.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        folder = re.search(r"`(results/[^`/]+)/`", line)
        accuracy = re.search(r"\*\*(\d+\.\d+)%\*\*", line)
        if line.startswith("|") and folder and accuracy:
            rows.append((folder.group(1), float(accuracy.group(1))))
    return rows


def test_each_section_appears_once():
    headings = re.findall(r"^##? .+$", README, flags=re.MULTILINE)
    assert len(headings) == len(set(headings)), [h for h in headings if headings.count(h) > 1]


def test_results_table_has_rows():
    assert len(results_rows()) >= 3


@pytest.mark.parametrize("folder, stated", results_rows(), ids=[row[0] for row in results_rows()])
def test_results_table_states_each_runs_recorded_accuracy(folder, stated):
    metrics = json.loads((ROOT / folder / "metrics.json").read_text())
    assert metrics["epoch"][-1] == metrics["args"]["epochs"], f"{folder} has not finished"
    assert stated == round(100 * metrics["eval_accuracy"][-1], 2)


def partial_rows():
    """(folder, epoch reached, epochs planned, stated accuracy in %) for each row of the README's table of runs
    that a time limit stopped early (they state the accuracy at the epoch reached, not a final one)."""
    rows = []
    for line in README.splitlines():
        folder = re.search(r"`(results/[^`/]+-partial)/`", line)
        reached = re.search(r"epoch (\d+) of (\d+) \| (\d+\.\d+)%", line)
        if line.lstrip().startswith("|") and folder and reached:
            rows.append((folder.group(1), int(reached.group(1)), int(reached.group(2)), float(reached.group(3))))
    return rows


def test_partial_runs_table_has_rows():
    assert len(partial_rows()) >= 1


@pytest.mark.parametrize("folder, reached, planned, stated", partial_rows(), ids=[row[0] for row in partial_rows()])
def test_partial_runs_state_their_recorded_epoch_and_accuracy(folder, reached, planned, stated):
    metrics = json.loads((ROOT / folder / "metrics.json").read_text())
    assert (metrics["epoch"][-1], metrics["args"]["epochs"]) == (reached, planned)
    assert stated == round(100 * metrics["eval_accuracy"][-1], 2)
