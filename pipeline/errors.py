"""Exception hierarchy shared by both stages.

Every error a *user* can cause (bad config, bad manifest, missing weights, a
locked store) derives from :class:`PipelineError`, carries a message that names
the offending file/sample/key and says how to fix it, and maps to exit code 2.
Builtin bases (ValueError, KeyError, FileNotFoundError, OSError) are kept so callers
that catch the standard exceptions keep working.

Faults of the operating system (permission denied, read-only or full disk, a missing
folder) become :class:`StorageError` through :func:`os_faults` / :func:`storage_error`:
exit code 2 with the path, the operation and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

# Exit codes of the CLI (documented in the README).
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: an unexpected exception escaped
EXIT_USER_ERROR = 2  # the input or configuration is wrong; nothing was run
EXIT_PARTIAL = 3  # the run finished but some items failed (listed in the summary)
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): stopped; everything already computed is kept


class PipelineError(Exception):
    """Base class of every error caused by user input; exits with code 2."""

    exit_code = EXIT_USER_ERROR


class ConfigError(PipelineError, ValueError):
    """An experiment/config file or CLI option is invalid."""


class UnknownNameError(PipelineError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ManifestError(PipelineError, ValueError):
    """A manifest (or the raw dataset behind it) is malformed."""


class StoreError(PipelineError, ValueError):
    """A feature store is missing, incompatible or malformed."""


class StoreLockedError(StoreError):
    """Another process holds the write lock of a feature store."""


class MissingWeightsError(PipelineError, FileNotFoundError):
    """Pretrained weights are not available offline; says where to put them."""


class DataError(PipelineError, ValueError):
    """Feature matrices or labels are unusable (NaN/inf, one class, ...)."""


class StorageError(PipelineError, OSError):
    """The operating system refused a read or write (permissions, read-only or full disk,
    a missing folder). The message names the path, the operation and the fix."""

    def __str__(self) -> str:  # OSError would print "[Errno N] None: 'path'" instead
        return str(self.args[0]) if self.args else ""

_FIXES = {
    errno.EACCES: "give this user access to it (e.g. `chmod u+rwX` on the folder) or point "
                  "--artifacts at a folder you can write",
    errno.EPERM: "give this user access to it or point --artifacts at a folder you can write",
    errno.EROFS: "the file system is mounted read-only: remount it read-write or point --artifacts "
                 "at a writable disk",
    errno.ENOSPC: "the disk is full: free some space (see `df -h`) and run the same command again; "
                  "everything already computed is kept",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again; "
                  "everything already computed is kept",
    errno.EFBIG: "the file exceeds the size limit of this system or process (`ulimit -f`): raise "
                 "the limit or point --artifacts at another disk; everything already computed is kept",
    errno.ENOENT: "a folder on that path does not exist: create it or fix the path",
    errno.ENOTDIR: "a part of that path is a file, not a folder: fix the path",
    errno.EISDIR: "that path is a folder, not a file: fix the path",
}
_HDF5_ERRNO = re.compile(r"errno = (\d+)")


def os_errno(exc: BaseException) -> int | None:
    """The errno of an OS fault: ``OSError.errno``, or the ``errno = N`` HDF5 puts in its
    messages (h5py raises OSError or RuntimeError without an errno for failed writes)."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return code
    match = _HDF5_ERRNO.search(str(exc))
    return int(match.group(1)) if match else None


def storage_error(exc: BaseException, operation: str, path: object | None = None) -> StorageError:
    """A :class:`StorageError` for ``exc`` saying which ``operation`` on which ``path`` failed,
    why (errno name and text) and the fix. ``path`` defaults to the exception's filename."""
    code = os_errno(exc)
    target = path if path is not None else getattr(exc, "filename", None)
    where = f" {target}" if target else ""
    if code is not None:
        why = f"{os.strerror(code)} [{errno.errorcode.get(code, code)}]"
    else:
        why = str(exc)
    fix = _FIXES.get(code, "check that the path exists and is readable/writable, then run the "
                           "same command again")
    err = StorageError(f"cannot {operation}{where}: {why}. Fix: {fix}")
    err.errno = code
    err.filename = str(target) if target else None
    return err


def is_os_fault(exc: BaseException) -> bool:
    """True for a failed OS call (an OSError with an errno, or an HDF5 error quoting one)."""
    if isinstance(exc, PipelineError):
        return False
    if isinstance(exc, OSError):
        return os_errno(exc) is not None
    return isinstance(exc, RuntimeError) and os_errno(exc) is not None


@contextlib.contextmanager
def os_faults(operation: str, path: object | None = None) -> Iterator[None]:
    """Turn an OS fault inside the block into a :class:`StorageError` naming ``operation``.

    >>> with os_faults("write the manifest", "artifacts/manifests/x.csv"):  # doctest: +SKIP
    ...     frame.to_csv(...)
    """
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if not is_os_fault(exc):
            raise
        raise storage_error(exc, operation, path) from exc


# h5py cannot close a file whose write failed (a full disk, a size limit): freeing its objects,
# or the interpreter's teardown, then crashes with SIGSEGV (h5py issues #914 and #1120). The
# objects of such a write are kept here, never freed, and `pipeline.cli.console` ends the
# process with os._exit after flushing its output, so the exit code stays 2.
UNCLOSABLE_HDF5: list[BaseException] = []


class BundleError(PipelineError, ValueError):
    """A model bundle is missing, modified, made by a newer schema, or holds untrusted types."""
