"""The encoder contract: registries, taps, availability and the hooked frozen image encoder."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from extract.encoders.weights import RANDOM_INIT
from extract.preprocess import PreprocessConfig
from pipeline.registry import Registry

if TYPE_CHECKING:
    from extract.backends.export import ExportSpec
    from extract.backends.ort import OrtSession

#: name -> builder(allow_random_weights=..., allow_download=...) -> ImageEncoder
IMAGE_ENCODERS: Registry[Callable[..., ImageEncoder]] = Registry("image encoder")
#: name -> builder(batch_size=..., allow_download=..., [model=..., pooling=...]) -> text encoder
TEXT_ENCODERS: Registry[Callable[..., Any]] = Registry("text encoder")
#: pooling of Hugging Face text encoders: attention-masked mean, or the [CLS] token
POOLINGS = ("mean", "cls")


@dataclass(frozen=True)
class Tap:
    """A module whose output is global-average-pooled into a feature vector."""

    name: str  # layer name in the store ('X' for the main features)
    module: str  # dotted submodule path
    activation: str | None = None  # applied before pooling: None | 'relu' | 'relu6'


@dataclass(frozen=True)
class Availability:
    """Whether an encoder can be built offline right now, and from which file."""

    name: str
    available: bool
    weights_file: str
    detail: str


@dataclass(frozen=True)
class TextEncoding:
    """Vectors for a list of texts (caller's order) and which ones were truncated."""

    X: np.ndarray  # float32 [n, dim]
    truncated: np.ndarray  # bool [n]

    @property
    def n_truncated(self) -> int:
        return int(self.truncated.sum())


def image_store_key(name: str, *, random_init: bool = False, equalize: bool = False) -> str:
    """Store key of an image encoder: its name, ``+random-init`` for random weights, ``+eq``."""
    return name + (f"+{RANDOM_INIT}" if random_init else "") + ("+eq" if equalize else "")


def pool_tap(y: Any, activation: str | None) -> Any:
    """Apply a tap's activation and global-average-pool a feature map to ``[n, d]`` float32."""
    import torch.nn.functional as F

    if activation == "relu":
        y = F.relu(y)
    elif activation == "relu6":
        y = F.relu6(y)
    if y.ndim == 4:
        y = y.float().mean(dim=(2, 3))
    return y.reshape(y.shape[0], -1).float()


class ImageEncoder:
    """A frozen model plus forward hooks on its taps. Build via :func:`extract.encoders.build_image_encoder`."""

    #: ONNX Runtime runs a batch in slices of this many images (outputs bitwise identical to
    #: one call): 4 keeps a CNN's activations in L2 cache. Measured on 2 AMD EPYC cores,
    #: images/s by slice size 1/4/8/16/32: EfficientNet-Lite0 290/361/331/289/257, ResNet50
    #: 50/55/54/52/54 (``extract.backends.ort.OrtSession``).
    onnx_micro_batch = 4

    def __init__(
        self,
        name: str,
        model: Any,
        *,
        main: Tap,
        taps: tuple[Tap, ...],
        dim: int,
        preprocess: PreprocessConfig,
        architecture: str,
        weights_name: str,
        weights_sha256: str,
        trained_on: list[str],
    ) -> None:
        self.name = name
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.main = main
        self.taps = taps
        self.dim = dim
        self.preprocess = preprocess
        self.architecture = architecture
        self.weights_name = weights_name
        self.weights_sha256 = weights_sha256
        self.trained_on = list(trained_on)
        self.device = "cpu"
        self.channels_last = False
        self.session: OrtSession | None = None  # set when ONNX Runtime runs the encoder
        self._captured: dict[str, Any] = {}
        for tap in (main, *taps):
            module = self.model.get_submodule(tap.module)
            module.register_forward_hook(self._hook(tap.name))

    @property
    def random_init(self) -> bool:
        return self.weights_name == RANDOM_INIT

    @property
    def key(self) -> str:
        """Store key: the registry name, plus ``+random-init`` for random weights."""
        return image_store_key(self.name, random_init=self.random_init)

    @property
    def layers(self) -> list[str]:
        return [t.name for t in self.taps]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            self._captured[name] = output

        return hook

    def to(self, device: str, *, channels_last: bool = False) -> ImageEncoder:
        import torch

        self.device = str(device)
        self.channels_last = bool(channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(device=device, memory_format=fmt)
        return self

    def describe(self) -> dict[str, Any]:
        """The encoder part of the store provenance."""
        return {
            "modality": "image",
            "architecture": self.architecture,
            "weights_name": self.weights_name,
            "weights_sha256": self.weights_sha256,
            "preprocessing": self.preprocess.to_dict(),
            "decode": self.preprocess.decode_dict(),
            "dim": self.dim,
            "layers": self.layers,
            "trained_on": list(self.trained_on),
        }

    def forward_taps(self, x: Any) -> tuple[Any, ...]:
        """Pooled tap outputs ``(X, *taps)`` as float32 tensors for a batch already on the device."""
        self._captured.clear()
        try:
            self.model(x)
            return tuple(
                pool_tap(self._captured[t.name], t.activation) for t in (self.main, *self.taps)
            )
        finally:
            self._captured.clear()

    # --- ONNX export (see extract.backends) ------------------------------------------------
    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in (self.main, *self.taps))

    def onnx_identity(self) -> dict[str, Any]:
        """What an exported graph of this encoder depends on (the export cache key)."""
        c, s = self.preprocess.channels, self.preprocess.size
        return {
            "kind": "image",
            "encoder": self.name,
            "architecture": self.architecture,
            "weights_sha256": self.weights_sha256,
            "input": [c, s, s],
            "taps": [asdict(t) for t in (self.main, *self.taps)],
        }

    @contextlib.contextmanager
    def onnx_export_spec(self) -> Iterator[ExportSpec]:
        """The module to trace (pooled taps as outputs) on the CPU; placement restored after."""
        import torch

        from extract.backends.export import ExportSpec

        device, channels_last = self.device, self.channels_last
        if device != "cpu":
            self.to("cpu", channels_last=channels_last)
        try:
            generator = torch.Generator().manual_seed(0)
            c, s = self.preprocess.channels, self.preprocess.size
            example = torch.randn(2, c, s, s, generator=generator)
            axes = {name: {0: "batch"} for name in ("input", *self.output_names)}
            yield ExportSpec(_TapOutputs.build(self), (example,), ("input",), self.output_names,
                             axes)
        finally:
            if device != "cpu":
                self.to(device, channels_last=channels_last)

    def encode(self, batch: Any, *, autocast: bool = False) -> dict[str, np.ndarray]:
        """Forward a float32 batch [n, C, H, W]; returns {'X': [n, dim], tap: [n, d_tap]}.

        Runs on ONNX Runtime when a session is attached (:attr:`session`), else on torch.
        """
        if self.session is not None:
            x = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
            out = self.session.run({"input": x})
            out = {name: out[name] for name in self.output_names}
        else:
            out = self._encode_torch(batch, autocast)
        if out["X"].shape[1] != self.dim:
            raise RuntimeError(f"{self.name}: expected dim {self.dim}, got {out['X'].shape[1]}")
        return out

    def _encode_torch(self, batch: Any, autocast: bool) -> dict[str, np.ndarray]:
        import torch

        x = batch.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        device_type = torch.device(self.device).type
        with torch.inference_mode(), torch.autocast(device_type, enabled=autocast):
            pooled = self.forward_taps(x)
        return {
            tap.name: np.ascontiguousarray(y.cpu().numpy(), dtype=np.float32)
            for tap, y in zip((self.main, *self.taps), pooled, strict=True)
        }


class _TapOutputs:
    """Builds the traced module: the encoder's model, returning its pooled taps as a tuple."""

    @staticmethod
    def build(encoder: ImageEncoder) -> Any:
        import torch

        class TapOutputs(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = encoder.model  # registered, so the exporter sees the weights

            def forward(self, x: Any) -> tuple[Any, ...]:
                return encoder.forward_taps(x)

        return TapOutputs().eval()
