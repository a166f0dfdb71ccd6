"""Do a manifest's images exist? A fast threaded stat of every image path, with a hint when almost none do."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Fewer than this share of the images found = a wrong image root, not a partial download.
MIN_FOUND_SHARE = 0.02
#: Rows from which a progress bar (terminal) or progress log lines are shown.
PROGRESS_FROM = 50_000
_CHUNK = 2_000


@dataclass(frozen=True)
class ImageCheck:
    """Which image files of a manifest exist under its image root."""

    image_root: Path
    checked: int
    missing_ids: tuple[str, ...]
    missing_paths: tuple[str, ...]  # relative paths, same order as missing_ids
    seconds: float

    @property
    def missing(self) -> int:
        return len(self.missing_ids)

    @property
    def found(self) -> int:
        return self.checked - self.missing

    @property
    def almost_none_found(self) -> bool:
        return self.checked > 0 and self.found < MIN_FOUND_SHARE * self.checked

    def summary(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "found": self.found,
            "missing": self.missing,
            "missing_examples": list(self.missing_paths[:5]),
            "seconds": round(self.seconds, 2),
        }


def _exists(paths: Sequence[str]) -> list[bool]:
    return [os.path.isfile(p) for p in paths]


def check_images(
    ids: Sequence[str], rel_paths: Sequence[str], image_root: Path, *, progress: bool | None = None
) -> ImageCheck:
    """Stat every ``image_root / rel_path`` (absolute paths as they are) in worker threads.

    A progress bar is shown on a terminal from :data:`PROGRESS_FROM` rows (``progress=None``),
    elsewhere a log line per ~10%.
    """
    t0 = time.perf_counter()
    root = Path(image_root)
    full = [p if os.path.isabs(p) else os.path.normpath(os.path.join(root, p)) for p in rel_paths]
    chunks = [full[i : i + _CHUNK] for i in range(0, len(full), _CHUNK)]
    large = len(full) >= PROGRESS_FROM
    show_bar = large if progress is None else progress
    show_bar = bool(show_bar and sys.stderr.isatty())
    bar = None
    if show_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(full), unit="img", desc="checking images", leave=False)
    exists: list[bool] = []
    done_share = 0.0
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 2) * 4)) as pool:
        for part in pool.map(_exists, chunks):
            exists += part
            if bar is not None:
                bar.update(len(part))
            elif large and len(exists) / len(full) >= done_share + 0.1:
                done_share = len(exists) / len(full)
                logger.info("checked %d of %d images", len(exists), len(full))
    if bar is not None:
        bar.close()
    missing = [i for i, ok in enumerate(exists) if not ok]
    return ImageCheck(
        image_root=root,
        checked=len(full),
        missing_ids=tuple(str(ids[i]) for i in missing),
        missing_paths=tuple(str(rel_paths[i]) for i in missing),
        seconds=time.perf_counter() - t0,
    )


def likely_root(check: ImageCheck) -> Path | None:
    """A nearby folder under which the first missing image exists (a root one level off), if any."""
    if not check.missing_paths:
        return None
    rel = check.missing_paths[0]
    root = check.image_root
    candidates = [root.parent, root.parent.parent, root / "files", root / "NLMCXR_png", root / "images"]
    parts = Path(rel).parts
    if len(parts) > 1:  # the root already includes the first folder of the path (files/files/...)
        candidates.append(root.parent if root.name == parts[0] else root / parts[0])
    for cand in candidates:
        if (cand / rel).is_file():
            return cand
    return None


def missing_images_message(check: ImageCheck, *, where: str, hint: str = "") -> str:
    """The exit-2 message when (almost) no image exists: one expected path and the likely fix."""
    rel = check.missing_paths[0]
    expected = Path(rel) if os.path.isabs(rel) else check.image_root / rel
    msg = (
        f"{where}: only {check.found} of {check.checked} images exist under --image-root "
        f"{str(check.image_root)!r} (e.g. {str(expected)!r} is missing)."
    )
    found_at = likely_root(check)
    if found_at is not None:
        msg += f" That image exists under {str(found_at)!r}: pass --image-root {found_at}."
    elif Path(rel).parts and check.image_root.name == Path(rel).parts[0]:
        msg += (f" The image paths already start with {Path(rel).parts[0]}/, so --image-root "
                f"should be its parent {str(check.image_root.parent)!r}.")
    else:
        msg += " Pass --image-root the folder the manifest's image paths are relative to."
    if hint:
        msg += f" ({hint}.)"
    return msg + " For a text-only manifest pass --skip-image-check."
