"""Sharded extraction on a Dask cluster, merged atomically into the normal store.

Layout of one distributed run of ``encoder`` on dataset ``D``::

    <features_root>/.shards/<D>/<run-token>/shard-00000/<D>/<key>.h5   # worker 0's store
    <features_root>/.shards/<D>/<run-token>/shard-00001/<D>/<key>.h5   # worker 1's store
    ...
    <features_root>/<D>/<key>.h5                                       # the normal store

1. The driver lists the manifest ids that are not yet in the normal store (when its
   key can be known without building the model) and splits them into ``n_shards``
   contiguous, deterministic shards.
2. One Dask task per shard calls :func:`extract.runner.run_extract` on a copy of the
   manifest restricted to the shard's ids, writing to the shard's own store. Each
   shard store is an ordinary crash-safe store, so a killed task resumes where it
   stopped when the run is repeated (the run token only depends on the encoder
   settings and the number of shards).
3. :func:`merge_shards` folds the shard stores into the normal store through one
   :class:`pipeline.store.feature_store.StoreWriter` (public API only): the store file is replaced
   atomically when the writer closes, rows are added idempotently by sample id
   (re-merging adds nothing), and shards with a different encoder setup are refused.

Fitted (transductive) text encoders such as ``tfidf_svd`` cannot be sharded: each
shard would fit its own model. They are refused with a message; run them locally.

Every shard runs with the caller's :class:`extract.options.ExtractOptions` (the same
object the local path takes), so no option is lost on the way. Dask worker processes
are daemonic by default and cannot start DataLoader worker processes, and forking them
from a threaded worker copies other tasks' open store files: with the default
``num_workers=None`` a shard decodes in the task's own thread (an explicit
``num_workers`` is passed through); run one single-threaded Dask worker per core (or
one per GPU) instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extract.options import ExtractOptions
from pipeline.errors import ConfigError, StoreError
from pipeline.store.feature_store import COMPATIBILITY_KEYS, FeatureStore, StoreWriter, store_path

if TYPE_CHECKING:
    from pipeline.manifest import Manifest

logger = logging.getLogger(__name__)

SHARDS_DIR = ".shards"
MERGE_CHUNK_ROWS = 4096
#: Keys FeatureStore adds to the provenance it reads back; not part of a writer's provenance.
_READ_ONLY_KEYS = ("schema_version", "content_sha256", "n_rows", "created", "updated")


@dataclass(frozen=True)
class MergeSummary:
    """Outcome of :func:`merge_shards`."""

    target: Path
    n_shards: int
    n_rows_in_shards: int
    n_added: int
    n_already_present: int
    n_failed: int
    n_rows_total: int


@dataclass(frozen=True)
class ShardResult:
    """What one shard task did (a plain, picklable record)."""

    shard: int
    root: Path
    n_ids: int
    n_embedded: int
    failed: dict[str, str]
    items_per_s: float
    seconds: float
    backend: str = "torch"


@dataclass(frozen=True)
class DistributedExtractSummary:
    """Outcome of :func:`run_extract_distributed`."""

    encoder: str
    n_pending: int
    n_skipped_existing: int
    shards: tuple[ShardResult, ...]
    merges: tuple[MergeSummary, ...]
    seconds: float

    @property
    def failed(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in self.shards:
            out.update(s.failed)
        return out

    def render(self) -> str:
        lines = [
            f"distributed extract {self.encoder}: {self.n_pending} pending ids in "
            f"{len(self.shards)} shards ({self.n_skipped_existing} already stored), "
            f"{self.seconds:.1f} s"
        ]
        for s in self.shards:
            lines.append(
                f"  shard {s.shard:>3}: {s.n_ids} ids, {s.n_embedded} embedded, "
                f"{len(s.failed)} failed, {s.items_per_s:.1f} items/s ({s.backend})"
            )
        for m in self.merges:
            lines.append(
                f"  merged into {m.target}: +{m.n_added} rows ({m.n_already_present} already "
                f"present, {m.n_failed} failed ids), {m.n_rows_total} rows in all"
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- sharding


def shard_ids(ids: Sequence[str], n_shards: int) -> list[list[str]]:
    """Split ``ids`` into at most ``n_shards`` contiguous, non-empty, near-equal shards."""
    if n_shards < 1:
        raise ConfigError(f"n_shards must be >= 1, got {n_shards}")
    ids = [str(i) for i in ids]
    n = min(n_shards, len(ids))
    if n == 0:
        return []
    base, extra = divmod(len(ids), n)
    out, start = [], 0
    for k in range(n):
        stop = start + base + (1 if k < extra else 0)
        out.append(ids[start:stop])
        start = stop
    return out


def subset_manifest(manifest: Manifest, ids: Sequence[str]) -> Manifest:
    """A copy of a manifest whose frame holds only ``ids`` (manifest order)."""
    wanted = {str(i) for i in ids}
    frame = manifest.frame
    mask = frame["sample_id"].astype(str).isin(wanted)
    return dataclasses.replace(manifest, frame=frame.loc[mask].reset_index(drop=True))


def run_token(encoder: str, n_shards: int, options: dict[str, Any]) -> str:
    """Folder name of a run's shards: stable for the same encoder, shard count and options."""
    payload = json.dumps(
        {"encoder": encoder, "n_shards": n_shards, **options}, sort_keys=True, default=str
    )
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in encoder)[:40]
    return f"{slug}-{n_shards}x-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


# --------------------------------------------------------------------------- merge


def _writer_provenance(store: FeatureStore) -> dict[str, Any]:
    return {k: v for k, v in store.provenance.items() if k not in _READ_ONLY_KEYS}


def _compat(prov: dict[str, Any]) -> str:
    return json.dumps({k: prov.get(k) for k in COMPATIBILITY_KEYS}, sort_keys=True, default=str)


def merge_shards(
    shard_paths: Sequence[str | Path],
    target: str | Path,
    *,
    chunk_rows: int = MERGE_CHUNK_ROWS,
    lock_timeout: float = 0.0,
) -> MergeSummary:
    """Merge shard stores into ``target`` through one :class:`StoreWriter` (public API only).

    Atomic: the target file is replaced in one ``os.replace`` when the writer closes
    (an interrupted merge leaves only part files that the next writer of ``target``
    finishes). Idempotent by sample id: ids already in ``target`` (or in an earlier
    shard) are skipped, so merging twice changes nothing. Failed ids of the shards are
    recorded as failed in ``target`` unless embedded. Memory is bounded by ``chunk_rows``.

    Raises:
        StoreError: no shard given, a shard is unreadable, or shards (or the target) were
            made with different encoder setups.
    """
    paths = [Path(p) for p in shard_paths]
    if not paths:
        raise StoreError(f"no shard stores to merge into {target}; run the shard extraction first")
    stores = [FeatureStore(p) for p in paths]
    ref = stores[0]
    for s in stores[1:]:
        if _compat(s.provenance) != _compat(ref.provenance):
            diff = [k for k in COMPATIBILITY_KEYS if s.provenance.get(k) != ref.provenance.get(k)]
            raise StoreError(
                f"shard {s.path} was made with a different encoder setup than {ref.path} "
                f"(differs in {diff}); delete the shard folder {s.path.parent.parent} and re-run "
                "the distributed extraction so every shard uses the same encoder"
            )
    provenance = _writer_provenance(ref)
    target_store = FeatureStore(target) if Path(target).exists() else None
    inference = _merged_inference(stores, target_store)
    if inference is not None:
        provenance["inference"] = inference
    layers = list(ref.layers)
    n_rows = sum(len(s) for s in stores)
    n_failed = 0
    with StoreWriter(Path(target), provenance, lock_timeout=lock_timeout) as writer:
        before = len(writer.done_ids)
        for s in stores:
            ids = [str(i) for i in s.ids]
            for start in range(0, len(ids), chunk_rows):
                chunk = ids[start : start + chunk_rows]
                arrays = {"X": s.read(chunk)}
                for layer in layers:
                    arrays[layer] = s.read(chunk, layer=layer)
                writer.add(chunk, arrays)
                writer.flush()
            for sid, reason in s.failed.items():
                writer.add_failed(sid, reason)
                n_failed += 1
        n_added = writer.n_added
        total = before + n_added
    logger.info(
        "merged %d shard(s) into %s: +%d rows (%d rows in all)", len(paths), target, n_added, total
    )
    return MergeSummary(
        target=Path(target),
        n_shards=len(paths),
        n_rows_in_shards=n_rows,
        n_added=n_added,
        n_already_present=n_rows - n_added,
        n_failed=n_failed,
        n_rows_total=total,
    )


def _merged_inference(stores: Sequence[FeatureStore], target: FeatureStore | None
                      ) -> dict[str, Any] | None:
    """The ``inference`` provenance of a merge, from the parts that hold rows (a shard that
    embedded nothing says nothing about how rows were made); None when no part has rows.
    Parts made with different backends are merged only when no part's check against torch
    failed, and the record lists them as ``mixed_backends``."""
    parts = [s for s in stores if len(s)] + ([target] if target is not None and len(target) else [])
    records = [dict(s.provenance.get("inference") or {}) for s in parts]
    backends = sorted({r.get("backend", "torch") for r in records})
    if len(backends) <= 1:
        return records[0] if records else None
    failed = [str(s.path) for s, r in zip(parts, records, strict=True)
              if (r.get("check") or {}).get("passed") is False]
    if failed:
        raise StoreError(
            f"cannot merge rows embedded with different backends ({', '.join(backends)}): the "
            f"check against torch failed for {', '.join(failed)}; re-run the distributed "
            "extraction with --backend torch (or delete the shard folder and re-run)"
        )
    logger.warning("merging rows embedded with %s: allowed, every onnxruntime part passed its "
                   "check against torch", " and ".join(backends))
    return {**records[0], "mixed_backends": backends}


# --------------------------------------------------------------------------- shard task


def extract_shard(
    manifest: Manifest,
    ids: Sequence[str],
    encoder: str,
    shard_root: str | Path,
    shard: int,
    options: ExtractOptions,
) -> ShardResult:
    """Run :func:`extract.runner.run_extract` on ``ids`` only, into ``shard_root`` (a Dask task)."""
    from extract.runner import run_extract

    sub = subset_manifest(manifest, ids)
    summary = run_extract(sub, encoder, Path(shard_root), options)
    return ShardResult(
        shard=shard,
        root=Path(shard_root),
        n_ids=len(ids),
        n_embedded=summary.n_embedded,
        failed=dict(summary.failed),
        items_per_s=float(summary.items_per_s),
        seconds=float(summary.seconds),
        backend=summary.backend,
    )


def get_client(scheduler: Any) -> tuple[Any, bool]:
    """``(client, owned)`` for a ``distributed.Client`` or a scheduler address string."""
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "distributed extraction needs Dask: pip install -c constraints.txt "
            "'cxr-fusion-pipeline[dask]' (or drop the scheduler option to run locally)"
        ) from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler:
        raise ConfigError(
            f"scheduler must be a Dask scheduler address like 'tcp://10.0.0.5:8786' or a "
            f"distributed.Client, got {scheduler!r}"
        )
    try:
        return distributed.Client(scheduler, set_as_default=False, timeout="15s"), True
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler!r} ({exc}); start one with "
            "`dask scheduler` and workers with `dask worker <address>`, or check the address"
        ) from exc


def run_extract_distributed(
    manifest: Manifest,
    encoder: str,
    features_root: str | Path,
    options: ExtractOptions | None = None,
    *,
    scheduler: Any,
    n_shards: int | None = None,
    keep_shards: bool = False,
    resources: dict[str, float] | None = None,
    **overrides: Any,
) -> DistributedExtractSummary:
    """Embed ``manifest`` with ``encoder`` on a Dask cluster; same store as :func:`run_extract`.

    ``options`` are the same :class:`ExtractOptions` the local path takes (keyword
    ``overrides`` replace single fields); every shard task runs with them unchanged, except
    that the limit is applied here and progress bars are off in the workers. ``scheduler``
    is a ``distributed.Client`` or an address. ``n_shards`` defaults to the number of worker
    threads of the cluster. ``resources`` is passed to ``client.submit`` (e.g. ``{"GPU": 1}``
    with workers started as ``dask worker --resources GPU=1``, one per GPU). Shard stores
    are deleted after a successful merge unless ``keep_shards``.
    """
    import time

    from extract.backends.export import default_onnx_cache
    from extract.encoders import encoder_modality, expected_store_key
    from extract.encoders.spec import base_name
    from extract.jobs import is_fitted_text_encoder

    options = ExtractOptions.of(options, **overrides)
    started = time.perf_counter()
    if is_fitted_text_encoder(base_name(encoder)):
        raise ConfigError(
            f"text encoder {encoder!r} is fitted on the whole corpus, so shards would each fit "
            "a different model; run it without a scheduler (it is cheap on one CPU)"
        )
    encoder_modality(encoder)  # unknown names fail here, before any task is sent
    features_root = Path(features_root)
    ids = [str(s) for s in manifest.ids]
    if options.limit is not None:
        ids = ids[: options.limit]
    key = expected_store_key(encoder, options)
    done: set[str] = set()
    if key is not None:
        main = store_path(features_root, manifest.name, key)
        if main.exists():
            done = {str(i) for i in FeatureStore(main).ids}
    pending = [i for i in ids if i not in done]
    # Shards embed exactly `pending`: the limit is already applied and the bar is off. The
    # default decode-worker count (None) means 0 in a shard: forking DataLoader workers from
    # a threaded Dask worker copies other tasks' open (HDF5-locked) files into the children.
    # The ONNX export cache is resolved here, so shards share it (not their shard folders).
    shard_options = dataclasses.replace(
        options,
        limit=None,
        progress=False,
        num_workers=0 if options.num_workers is None else options.num_workers,
        onnx_cache=options.onnx_cache or default_onnx_cache(features_root),
    )
    client, owned = get_client(scheduler)
    try:
        if n_shards is None:
            n_shards = max(1, sum(client.nthreads().values()))
        token = run_token(encoder, n_shards, options.token_fields())
        run_dir = features_root / SHARDS_DIR / manifest.name / token
        shards = shard_ids(pending, n_shards)
        logger.info(
            "distributed extract %s: %d pending ids (%d already stored) in %d shards, %s",
            encoder,
            len(pending),
            len(done),
            len(shards),
            run_dir,
        )
        futures = [
            client.submit(
                extract_shard,
                manifest,
                part,
                encoder,
                str(run_dir / f"shard-{k:05d}"),
                k,
                shard_options,
                key=f"extract-shard-{token}-{k}",
                pure=False,
                resources=resources,
            )
            for k, part in enumerate(shards)
        ]
        results = tuple(sorted(client.gather(futures), key=lambda r: r.shard))
    finally:
        if owned:
            client.close()
    merges = []
    by_name: dict[str, list[Path]] = {}
    for r in results:
        for p in sorted((r.root / manifest.name).glob("*.h5")):
            by_name.setdefault(p.name, []).append(p)
    for name, paths in sorted(by_name.items()):
        merges.append(merge_shards(paths, features_root / manifest.name / name,
                                   lock_timeout=options.lock_timeout))
    if not keep_shards and run_dir.exists():
        shutil.rmtree(run_dir)
    return DistributedExtractSummary(
        encoder=encoder,
        n_pending=len(pending),
        n_skipped_existing=len(ids) - len(pending),
        shards=results,
        merges=tuple(merges),
        seconds=round(time.perf_counter() - started, 3),
    )
