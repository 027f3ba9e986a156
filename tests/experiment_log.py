"""Reading docs/experiments.md, for the tests that check it against results/."""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stopped_run_commands(script="run_train.py"):
    """(output folder, argv) for each `python SCRIPT ...` quoted in the log's "Runs stopped early" prose
    (run_train.py's, or benchmarks/tutorial_reference.py's for the tutorial's own code)."""
    log = (ROOT / "docs" / "experiments.md").read_text()
    section = " ".join(log.split("\n## Runs stopped early\n", 1)[1].split("\n## ", 1)[0].split())
    commands = [shlex.split(command)[2:] for command in re.findall(rf"`(python {re.escape(script)} [^`]*)`", section)]
    return [(argv[argv.index("--output-dir") + 1], argv) for argv in commands]
