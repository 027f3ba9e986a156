"""Command-line plumbing shared by the project's scripts."""

import argparse
import sys


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but misuse is reported as ONE line on stderr with exit status 2 (not the usage text plus the
    error): `prog: error: <what is wrong> (see --help)`."""

    def error(self, message):
        message = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class CLIError(Exception):
    """A mistake in how a script was called: reported as one line, no traceback."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (libraries raise multi-line ones), or its type when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def run_cli(main, prog: str):
    """Call `main()`; a CLIError becomes `prog: error: ...` on stderr and exit status 2 (as argparse's errors)."""
    try:
        main()
    except CLIError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
