"""Files that appear whole: written under a temporary name, then given their own.

A reader that waits for a file to exist (a script waiting for ``dakghar-demo.key``, a second
process reading ``dakghar.secret``) must never read it empty or half-written, which a file
created and then written under its own name allows.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> bool:
    """Give ``path`` the content ``data`` (mode 0600), all at once: written and synced under a
    temporary name, then renamed. With ``exclusive``, an existing ``path`` is kept (a hard link
    is created only where nothing is); False then says another writer was first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
