"""Exception hierarchy shared by both stages.

Every error a *user* can cause (bad config, bad manifest, missing weights, a
locked store) derives from :class:`PipelineError`, carries a message that names
the offending file/sample/key and says how to fix it, and maps to exit code 2.
Builtin bases (ValueError, KeyError, FileNotFoundError) are kept so callers
that catch the standard exceptions keep working.
"""

from __future__ import annotations

# Exit codes of the CLI (documented in the README).
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: an unexpected exception escaped
EXIT_USER_ERROR = 2  # the input or configuration is wrong; nothing was run
EXIT_PARTIAL = 3  # the run finished but some items failed (listed in the summary)


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


class BundleError(PipelineError, ValueError):
    """A model bundle is missing, modified, made by a newer schema, or holds untrusted types."""
