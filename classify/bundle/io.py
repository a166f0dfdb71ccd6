"""Write and load model bundles safely: skops with a fixed trusted-type list, digests, schema check.

A bundle is a folder ``artifacts/models/<name>/``, assembled in a temporary sibling and
renamed into place; :func:`recover_interrupted` cleans up after a run killed with SIGKILL
(half-written temporaries removed, a bundle moved aside by a killed replacement restored)::

    model.skops        the fitted cell pipeline (skops format: JSON schema + .npy arrays in a
                       zip; no pickle anywhere, arrays are read with allow_pickle=False)
    model_card.md      the card for people
    model_card.json    the card for ``pipeline predict``; ``files`` holds the sha256 of the two
                       files above and ``card_sha256`` the digest of the card itself

Loading (:func:`load_bundle`) refuses, with exit code 2 and a message naming the file:
a folder that is not a bundle, a card of a newer :data:`BUNDLE_SCHEMA`, any digest that
does not match (a modified or truncated file), and any type in ``model.skops`` outside
:func:`trusted_types` (named in the message; nothing from the file is constructed or run
before this check). The digests detect corruption and casual edits; they are not a
signature (whoever can rewrite the folder can rewrite the digests too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from classify.bundle.card import ModelCard, render_card_markdown
from pipeline.errors import BundleError
from pipeline.helpers import atomic_write, file_sha256, fsync_dir

log = logging.getLogger(__name__)

#: Layout version of a bundle; a bundle with a larger number is refused.
BUNDLE_SCHEMA = 1
MODEL_FILE = "model.skops"
CARD_JSON = "model_card.json"
CARD_MD = "model_card.md"

#: Library types that skops does not trust by default but cell pipelines are made of.
#: scikit-learn/numpy/builtin types that skops trusts by default are accepted through skops'
#: own list; the project's own types come from :func:`trusted_types`.
LIBRARY_TYPES = (
    "imblearn.pipeline.Pipeline",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.utils._bunch.Bunch",
)


def trusted_types() -> tuple[str, ...]:
    """Every type a model file may hold beyond skops' defaults: :data:`LIBRARY_TYPES` plus
    the project's registered fusions, the fold sampler, the tabular blocks' prepare step
    (a CSV's clinical columns) and the classifier wrappers (named
    from the classes themselves, so moving a module keeps the list right). Anything else
    in a model file is refused by name."""
    from classify.models.classifiers import (
        BalancedWeights,
        CappedTrainingRows,
        VoteShareClassifier,
    )
    from classify.models.fusion import FUSIONS
    from classify.models.samplers import FoldSampler
    from classify.models.tabular_blocks import BlockPreprocessor

    own = [FUSIONS.get(n) for n in FUSIONS.names()] + [FoldSampler, BalancedWeights,
                                                       CappedTrainingRows, VoteShareClassifier,
                                                       BlockPreprocessor]
    return tuple(sorted({f"{c.__module__}.{c.__qualname__}" for c in own} | set(LIBRARY_TYPES)))



@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle: its folder, card and fitted estimator."""

    path: Path
    card: ModelCard
    estimator: Any = field(repr=False)


def card_digest(doc: dict[str, Any]) -> str:
    """sha256 of the card's canonical JSON without its own ``card_sha256`` field."""
    body = {k: v for k, v in doc.items() if k != "card_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                     default=str).encode("utf-8")).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _stale(path: Path, marker: str) -> bool:
    """True for ``.<name><marker><pid>...`` left by a process that no longer runs."""
    tail = path.name.split(marker, 1)[-1]
    digits = "".join(c for c in tail.split(".", 1)[0] if c.isdigit())
    return bool(digits) and int(digits) != os.getpid() and not _pid_alive(int(digits))


def recover_interrupted(path: str | os.PathLike) -> list[str]:
    """Clean up after a write of ``path`` (a bundle folder or a predictions file) killed with
    SIGKILL: a half-written temporary (``.<name>.tmp-<pid>`` folder, ``.<name>.<pid>.tmp``
    file) of a dead process is removed; a bundle moved aside by a killed ``--force``
    replacement (``.<name>.old-<pid>``) is moved back when nothing took its place, else
    removed. Returns what was done, one line each (also logged)."""
    path = Path(path)
    done: list[str] = []
    if not path.parent.is_dir():
        return done
    for p in sorted(path.parent.glob(f".{path.name}.*")):
        if p.name.startswith(f".{path.name}.old-") and _stale(p, ".old-"):
            if not path.exists():
                os.replace(p, path)
                done.append(f"restored {path} from {p.name} (a replacement was killed)")
                continue
            shutil.rmtree(p, ignore_errors=True)
            done.append(f"removed {p.name} (left by a killed replacement)")
        elif (p.name.startswith(f".{path.name}.tmp-") and _stale(p, ".tmp-")) or (
                p.name.endswith(".tmp") and _stale(p, f".{path.name}.")):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            done.append(f"removed {p.name} (half-written by a killed run)")
    for line in done:
        log.warning("%s", line)
    return done


def write_bundle(folder: str | os.PathLike, estimator: Any, card: ModelCard, *,
                 overwrite: bool = False) -> ModelCard:
    """Write ``estimator`` and ``card`` as a bundle at ``folder``; returns the card with digests.

    The bundle is assembled in a temporary sibling folder and renamed into place, so a
    reader never sees half a bundle. An existing bundle is replaced only with ``overwrite``.
    """
    import skops.io as sio

    folder = Path(folder)
    recover_interrupted(folder)
    if folder.exists() and not overwrite:
        raise BundleError(f"model bundle {folder} already exists; pick another name (--name) "
                          "or pass --force to replace it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        sio.dump(estimator, tmp / MODEL_FILE)
        check_model_types(tmp / MODEL_FILE)  # never write a bundle that could not be loaded
        card = replace(card, bundle_schema=BUNDLE_SCHEMA,
                       files={MODEL_FILE: file_sha256(tmp / MODEL_FILE)})
        atomic_write(tmp / CARD_MD, render_card_markdown(card))
        card = replace(card, files={**card.files, CARD_MD: file_sha256(tmp / CARD_MD)})
        doc = card.to_dict()
        doc["card_sha256"] = card_digest(doc)
        atomic_write(tmp / CARD_JSON, json.dumps(doc, indent=2, default=str) + "\n")
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp, folder)
        fsync_dir(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info("wrote model bundle %s", folder)
    return card


def read_card(folder: str | os.PathLike) -> ModelCard:
    """The verified card of the bundle at ``folder`` (schema, own digest and file digests)."""
    folder = Path(folder)
    if not folder.exists():
        recover_interrupted(folder)  # a --force replacement killed between its two renames
    path = folder / CARD_JSON
    if not path.is_file():
        hint = " (pass the bundle folder, not a file in it)" if folder.is_file() else ""
        raise BundleError(f"{folder} is not a model bundle: {CARD_JSON} is missing{hint}; "
                          "create one with `pipeline fit-final`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not readable JSON ({exc}); the bundle is damaged: "
                          "re-run `pipeline fit-final`") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path} is not a model card (a JSON object is expected)")
    schema = doc.get("bundle_schema")
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise BundleError(f"{path}: bundle_schema is {schema!r}, not an integer; not a bundle "
                          "written by `pipeline fit-final`")
    if schema > BUNDLE_SCHEMA:
        raise BundleError(
            f"{folder} was written with bundle schema {schema}, newer than this pipeline reads "
            f"(up to {BUNDLE_SCHEMA}); upgrade the pipeline (versions that wrote it: "
            f"{doc.get('versions', {})}) or re-run `pipeline fit-final` with this version"
        )
    if doc.get("card_sha256") != card_digest(doc):
        raise BundleError(f"{path} was modified after it was written (its card_sha256 does not "
                          "match its content); the bundle cannot be trusted: re-run "
                          "`pipeline fit-final`")
    files = doc.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise BundleError(f"{path} lists no digest for {MODEL_FILE}; not a complete bundle")
    for name, digest in files.items():
        f = folder / name
        if Path(name).name != name or not f.is_file():
            raise BundleError(f"bundle {folder}: file {name!r} listed in {CARD_JSON} is missing")
        got = file_sha256(f)
        if got != digest:
            raise BundleError(
                f"bundle {folder}: {name} was modified or damaged (sha256 {got[:16]}..., the card "
                f"says {str(digest)[:16]}...); the model cannot be trusted: re-run "
                "`pipeline fit-final`"
            )
    extra = sorted(p.name for p in folder.iterdir() if p.name not in {*files, CARD_JSON})
    if extra:
        log.warning("bundle %s holds files it does not list (ignored): %s", folder, extra)
    try:
        return ModelCard.from_dict(doc)
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path} lacks a required field or has a malformed one ({exc!r})") from None


def check_model_types(model_path: Path) -> list[str]:
    """The skops types of ``model_path`` beyond skops' defaults; BundleError on unknown ones."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except (zipfile.BadZipFile, json.JSONDecodeError, KeyError, ValueError, OSError) as exc:
        raise BundleError(f"{model_path} is not a readable skops file ({exc.__class__.__name__}: "
                          f"{exc}); re-run `pipeline fit-final`") from None
    allowed = set(trusted_types())
    unknown = sorted(t for t in untrusted if t not in allowed)
    if unknown:
        raise BundleError(
            f"{model_path} contains types that are not on the trusted list: {', '.join(unknown)}. "
            "Nothing from the file was loaded. A bundle holds only the project's cell pipeline "
            "types (classify.bundle.io.trusted_types()); do not load files from unknown sources"
        )
    return list(untrusted)


def load_bundle(folder: str | os.PathLike) -> Bundle:
    """Verify and load the bundle at ``folder`` (see the module docstring for what is refused)."""
    import skops.io as sio

    folder = Path(folder)
    card = read_card(folder)
    model_path = folder / MODEL_FILE
    trusted = check_model_types(model_path)
    try:
        estimator = sio.load(model_path, trusted=trusted)
    except (ImportError, AttributeError, TypeError, ValueError, KeyError) as exc:
        # a verified file that this environment cannot rebuild (other library versions)
        raise BundleError(
            f"{model_path} could not be loaded with this environment ({exc.__class__.__name__}: "
            f"{exc}); it was written with {card.versions}; install those versions or re-run "
            "`pipeline fit-final`"
        ) from None
    steps = getattr(estimator, "named_steps", None)
    if steps is None or "fusion" not in steps or "classifier" not in steps:
        raise BundleError(f"{model_path} does not hold a cell pipeline (fusion ... classifier)")
    return Bundle(folder, card, estimator)
