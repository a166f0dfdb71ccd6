"""ExtractOptions: the one frozen set of extraction options shared by the local and Dask paths."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extract.backends import BACKENDS
from pipeline.errors import ConfigError

#: Report-derived text (``both``, ``findings``, ``impression``) and the clinical ``indication``
#: written when the exam was ordered, before the read (manifest column ``indication``).
TEXT_MODES = ("both", "findings", "impression", "indication")

# Fields that do not change what a run computes: left out of a Dask run's token so that a
# repeated run with another progress/lock/flush setting resumes the same shards.
_RUN_ONLY_FIELDS = ("limit", "progress", "lock_timeout", "flush_every", "threads", "onnx_cache",
                    "rebuild")


@dataclass(frozen=True)
class ExtractOptions:
    """Everything ``pipeline extract`` can be told, besides the manifest, encoder and scheduler.

    Built once (by the CLI from its flags, or by a Python caller) and handed unchanged to
    :func:`extract.runner.run_extract` and :func:`extract.distributed.run_extract_distributed`,
    so an option cannot reach one path and be dropped on the other.

    ``num_workers=None``: DataLoader decode workers = min(4, CPUs) on a GPU; on the CPU 0 up
    to 2 cores and a quarter of the cores (1-4) above; 0 inside a daemonic process such as a
    Dask worker (see :func:`extract.jobs.decode_workers`). With 0 workers the next batch is
    decoded in a thread while the current one is encoded (:mod:`extract.read_ahead`).
    ``progress=None``: a bar only when stderr is a terminal. ``channels_last`` runs convolutions in NHWC layout.
    ``limit`` embeds only the first ``limit`` manifest rows. ``equalize`` applies histogram
    equalisation (its own store key, ``<name>+eq``). ``rebuild`` moves an existing store
    (e.g. a damaged one) to quarantine and embeds all rows.

    ``backend``: ``auto`` (ONNX Runtime on CPU, torch on CUDA/MPS), ``torch`` or
    ``onnxruntime`` (see :mod:`extract.backends`). ``threads``: the cores given to the run
    (ONNX Runtime intra-op threads, and torch's when set; None = every core this process
    may use). ``onnx_cache``: folder of exported graphs (None = ``<features_root>/../cache/onnx``).
    ``label_mask``: a :class:`pipeline.labels.LabelMask` to mask with instead of the one the
    manifest's label rule and tags give (``pipeline predict`` passes the model's, so new data
    is masked with exactly the training terms).
    ``jpeg_draft``: JPEGs at least 2 x ``jpeg_draft`` x the input size on their short side
    are decoded at reduced size (libjpeg DCT scaling) keeping the short side >= ``jpeg_draft``
    x the input size; 0 decodes every JPEG at full size (see :mod:`extract.preprocess`).
    """

    batch_size: int = 32
    num_workers: int | None = None
    device: str = "auto"
    backend: str = "auto"
    threads: int | None = None
    text_mode: str = "both"
    mask_labels: bool = False
    label_mask: Any = None
    equalize: bool = False
    limit: int | None = None
    allow_random_weights: bool = False
    allow_download: bool = False
    lock_timeout: float = 0.0
    flush_every: int = 1
    progress: bool | None = None
    channels_last: bool = True
    onnx_cache: Path | None = None
    jpeg_draft: int = 4
    rebuild: bool = False

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1 or int(self.flush_every) < 1:
            raise ConfigError(
                f"batch_size and flush_every must be >= 1 (got {self.batch_size}, "
                f"{self.flush_every})"
            )
        if self.limit is not None and int(self.limit) < 0:
            raise ConfigError(f"limit must be >= 0, got {self.limit}")
        if self.num_workers is not None and int(self.num_workers) < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend {self.backend!r} is not one of {', '.join(BACKENDS)}")
        if self.threads is not None and int(self.threads) < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if int(self.jpeg_draft) < 0:
            raise ConfigError(f"jpeg_draft must be >= 0 (0 = full decode), got {self.jpeg_draft}")
        if float(self.lock_timeout) < 0:
            raise ConfigError(f"lock_timeout must be >= 0 seconds, got {self.lock_timeout}")
        if self.text_mode not in TEXT_MODES:
            raise ConfigError(
                f"text mode {self.text_mode!r} is not one of {', '.join(TEXT_MODES)}"
            )

    @classmethod
    def of(cls, options: ExtractOptions | None = None, **overrides: Any) -> ExtractOptions:
        """``options`` (default: all defaults) with ``overrides`` applied; unknown names raise."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            from pipeline.helpers import did_you_mean

            raise ConfigError(
                f"unknown extract option(s) {unknown}.{did_you_mean(unknown[0], names)} "
                f"Valid options: {', '.join(sorted(names))}"
            )
        base = options if options is not None else cls()
        return dataclasses.replace(base, **overrides) if overrides else base

    def token_fields(self) -> dict[str, Any]:
        """The options that decide what a run computes (a Dask run's shard folder depends on them)."""
        return {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(self).items()
            if k not in _RUN_ONLY_FIELDS
        }
