"""Command-line plumbing shared by the project's scripts."""

import argparse


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but misuse is reported as ONE line on stderr with exit status 2 (not the usage text plus the
    error): `prog: error: <what is wrong> (see --help)`."""

    def error(self, message):
        message = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")
