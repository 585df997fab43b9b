"""Where the files a job reads may come from: the same rules for an OSC request, a journal record
being resumed and a sidecar being regenerated, so no record can point the model at a file elsewhere."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from bridge.errors import CommandError
from bridge.untrusted.files import describe_kind


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def confine_file(path: Path | str, roots: Sequence[Path], *, base: Path, what: str) -> Path:
    """`path` resolved (relative to `base`, `~` expanded, symlinks followed) if it is a regular file under
    one of `roots`; `..`, absolute paths elsewhere, symlinks that lead out, FIFOs and devices are refused."""
    try:
        raw = Path(os.path.expanduser(str(path)))
        if not raw.is_absolute():
            raw = Path(base).expanduser() / raw
        resolved = raw.resolve()
        if not _inside(resolved, roots):
            listed = ", ".join(str(r) for r in roots)
            raise CommandError(f"{what} {str(path)!r} is outside the folders {what}s may come from ({listed})")
        st = resolved.stat()
        if not stat.S_ISREG(st.st_mode):
            raise CommandError(f"{what} {str(path)!r} is not a file ({describe_kind(st.st_mode)})")
    except CommandError:
        raise
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: an embedded NUL byte
        raise CommandError(f"{what} {str(path)!r} is not a file") from None
    except (OSError, RuntimeError) as e:  # a name too long, a symlink loop
        raise CommandError(f"{what} {str(path)!r} cannot be used ({getattr(e, 'strerror', None) or e})") from None
    return resolved


def confine_codes(path: Path | str, codes_dir: Path) -> Path:
    """A codes file may only be one the bridge wrote, in <project>/.jukebox/codes."""
    folder = Path(codes_dir).expanduser().resolve()
    return confine_file(path, [folder], base=folder, what="codes file")
