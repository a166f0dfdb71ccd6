"""TF-IDF + TruncatedSVD (LSA) text baseline: unsupervised, fitted on the texts it embeds."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from extract.encoders.base import TEXT_ENCODERS, TextEncoding
from pipeline.errors import ConfigError


class TfidfSvdEncoder(BaseEstimator, TransformerMixin):
    """TF-IDF + TruncatedSVD (LSA) baseline; sklearn estimator (params in ``__init__``).

    Unsupervised but **transductive**: fitted on every text that is embedded (every row
    of the manifest in the chosen text mode; labels are never seen). Its parameters and a
    sha256 of the fitted corpus go into the store provenance, so a changed corpus cannot
    silently mix vectors. ``dim`` is ``min(n_components, n_texts - 1, n_terms - 1)`` and
    known after :meth:`fit`.
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
    """The (unfitted) TF-IDF + SVD baseline; call ``fit(texts)`` before ``encode``."""
    return TfidfSvdEncoder()
