"""What an extraction run reports: the frozen ExtractSummary, its log lines and the progress bar."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractSummary:
    """Result of one :func:`extract.runner.run_extract` call.

    ``seconds`` is the whole call (model loading included); ``items_per_s`` is the
    embedding throughput of the batch loop only (``n_embedded / loop seconds``).
    ``failed`` holds this run's per-item failures (``sample_id -> reason``).
    ``backend`` is the inference backend that embedded the rows (``torch``,
    ``onnxruntime``, or ``sklearn`` for the TF-IDF baseline).
    """

    encoder_key: str
    store: Path
    n_total: int
    n_skipped_existing: int
    n_embedded: int
    failed: dict[str, str]
    seconds: float
    items_per_s: float
    device: str
    modality: str = "image"
    n_truncated: int = 0
    preprocessing: dict[str, Any] = field(default_factory=dict)
    backend: str = "torch"

    def render(self) -> str:
        """A short human-readable summary (what ``pipeline extract`` prints)."""
        lines = [
            f"{self.encoder_key} ({self.modality}) -> {self.store}",
            f"  {self.n_total} samples: {self.n_skipped_existing} already stored, "
            f"{self.n_embedded} embedded, {len(self.failed)} failed"
            + (f", {self.n_truncated} texts truncated" if self.n_truncated else ""),
            f"  {self.seconds:.1f} s, {self.items_per_s:.1f} items/s on {self.device} "
            f"({self.backend})",
        ]
        shown = list(self.failed.items())[:10]
        lines += [f"  failed {sid}: {reason}" for sid, reason in shown]
        if len(self.failed) > len(shown):
            lines.append(f"  ... and {len(self.failed) - len(shown)} more (listed in the store)")
        return "\n".join(lines)

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def complete(self) -> bool:
        """True when every id of the (limited) manifest is now in the store."""
        return not self.failed


def log_summary(summary: ExtractSummary) -> None:
    """The end-of-run log lines (counts, rate, the first failures)."""
    s = summary
    logger.info(
        "extract %s -> %s: %d total, %d already stored, %d embedded, %d failed, %.1f s "
        "(%.1f %s/s on %s, %s)%s",
        s.encoder_key,
        s.store,
        s.n_total,
        s.n_skipped_existing,
        s.n_embedded,
        len(s.failed),
        s.seconds,
        s.items_per_s,
        "images" if s.modality == "image" else "reports",
        s.device,
        s.backend,
        f", {s.n_truncated} texts truncated" if s.n_truncated else "",
    )
    for sid, reason in list(s.failed.items())[:10]:
        logger.warning("failed %s: %s", sid, reason)
    if len(s.failed) > 10:
        logger.warning("... and %d more failures (see the store's failed list)", len(s.failed) - 10)


def progress_bar(total: int, unit: str, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar on a terminal; elsewhere (CI, log files) a log line every ~10%."""
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if enabled is None else bool(enabled)
    if show or enabled is False:
        return tqdm(
            total=total, unit=unit, desc=desc, disable=not show, dynamic_ncols=True, leave=False
        )
    return _LoggedProgress(total, unit, desc)


class _LoggedProgress:
    """Minimal stand-in for a tqdm bar that logs progress with items/s."""

    def __init__(self, total: int, unit: str, desc: str) -> None:
        self.total, self.unit, self.desc = total, unit, desc
        self.done, self._next = 0, max(1, total // 10)
        self._t0 = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if self.done >= self._next or self.done >= self.total:
            rate = self.done / max(time.perf_counter() - self._t0, 1e-9)
            logger.info("%s: %d/%d %s (%.1f %s/s)", self.desc, self.done, self.total, self.unit,
                        rate, self.unit)
            self._next = self.done + max(1, self.total // 10)

    def close(self) -> None:
        pass
