"""Files the command line writes: checked before any work, written beside and renamed.

A report that runs for a minute and then fails on a typo in ``-o`` wastes the minute; a
file half-written when the disk fills or the user presses Ctrl-C is worse than none.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from guildmeter.errors import UnwritableOutputError

__all__ = ["atomic_file", "check_writable", "file_slug"]

_UNSAFE = re.compile(r"[^\w.-]+")


def check_writable(path: str | Path) -> Path:
    """``path`` as a Path, once a file can be created beside it; else one-line error."""
    if str(path) == "-":  # the shell's "standard output": no command writes there
        raise UnwritableOutputError(
            "cannot write to standard output ('-'): the output is a file; give its name "
            "(e.g. -o dump.csv.gz), or leave -o out for the default name"
        )
    target = Path(path)
    if len(target.name.encode("utf-8")) > 200:
        raise UnwritableOutputError(f"cannot write {str(target)[:80]}…: the file name is too long")
    if target.is_dir():
        raise UnwritableOutputError(f"cannot write {target}: it is a folder")
    folder = target.parent
    if not folder.is_dir():
        raise UnwritableOutputError(f"cannot write {target}: folder {folder} does not exist")
    if target.exists() and not os.access(target, os.W_OK):
        raise UnwritableOutputError(f"cannot write {target}: the file is read-only")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name[:50]}.", delete=True):
            pass
    except OSError as exc:
        raise UnwritableOutputError(
            f"cannot write {target}: {exc.strerror or exc} in {folder}"
        ) from None
    return target


@contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside ``path``; rename it over ``path`` on success only."""
    target = check_writable(path)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed on success
        dir=target.parent, prefix=f".{target.name[:50]}.", suffix=".partial", delete=False
    )
    partial = Path(handle.name)
    try:
        with handle:
            yield handle
        os.chmod(partial, 0o666 & ~_umask())
        partial.replace(target)
    except OSError as exc:
        raise UnwritableOutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def file_slug(text: str, limit: int = 60) -> str:
    """``text`` made safe as part of a file name (letters of any script are kept)."""
    slug = _UNSAFE.sub("_", text.strip().removeprefix("#")).strip("._")
    return slug[:limit] or "channel"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
