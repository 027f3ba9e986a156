"""Durable writes: a file that a user relies on is either the old one, whole, or the new one, whole.

Everything is written under a temporary name next to its destination, flushed to disk, then renamed into place
(a rename within one folder is atomic). A crash at any moment leaves no half-written file under the real name.
"""

import errno
import os
import tempfile
from pathlib import Path

from cli import CLIError

_UMASK = os.umask(0o022)  # read the process umask once (setting it is the only way to read it), then restore it
os.umask(_UMASK)


class NoSpaceError(CLIError):
    """The disk filled up during a write: one line naming the file; the previous version stays in place."""


def finish_files(path):
    """Make a file, or a folder with everything under it, ready to be renamed into place: give the files the
    permissions open() would (mkstemp and safetensors create them 0600) and flush them to disk. A rename is only
    as durable as the data it points at: without the flush, a power loss right after it can leave an empty file."""
    path = Path(path)
    for item in [*sorted(path.rglob("*")), path] if path.is_dir() else [path]:
        if item.is_file():
            os.chmod(item, 0o666 & ~_UMASK)
        elif os.name == "nt":  # Windows cannot open a folder to flush it
            continue
        fd = os.open(item, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: Path, write):
    """Write a file through a temporary sibling and rename it over `path`: a crash leaves the old file whole.
    `write(tmp_path)` writes the content."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        finish_files(tmp)
        os.replace(tmp, path)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise NoSpaceError(f"no space left on device while writing {path}; the previous {path.name} is kept") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
