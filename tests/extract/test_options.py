"""ExtractOptions: every `pipeline extract` flag is a field and reaches the local and Dask paths."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from extract.options import ExtractOptions
from pipeline.cli import EXTRACT_ROUTING_ARGS, build_parser, main
from pipeline.errors import ConfigError

#: Fields only the Python API sets (no CLI flag); a new field must be added here or get a flag.
API_ONLY = {"flush_every", "channels_last", "onnx_cache", "label_mask"}  # label_mask: predict
#: CLI flags whose value reaches a field under another name.
RENAMED = {"no_progress": "progress"}

#: Every option flag with a non-default value, and the field value it must become.
CLI_VALUES = {
    "--text-mode": ("findings", "text_mode", "findings"),
    "--mask-labels": (None, "mask_labels", True),
    "--batch-size": ("7", "batch_size", 7),
    "--num-workers": ("3", "num_workers", 3),
    "--device": ("cpu", "device", "cpu"),
    "--backend": ("torch", "backend", "torch"),
    "--threads": ("1", "threads", 1),
    "--limit": ("5", "limit", 5),
    "--equalize": (None, "equalize", True),
    "--jpeg-draft": ("0", "jpeg_draft", 0),
    "--allow-download": (None, "allow_download", True),
    "--no-progress": (None, "progress", False),
    "--lock-timeout": ("12.5", "lock_timeout", 12.5),
    "--allow-random-weights": (None, "allow_random_weights", True),
    "--rebuild": (None, "rebuild", True),
}
#: Flags refused together with --scheduler (exit 2, tested below); every other flag reaches both paths.
LOCAL_ONLY = {"--rebuild"}


def _extract_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["extract"]


def test_every_cli_flag_is_an_option_field_and_every_field_is_accounted_for() -> None:
    actions = [a for a in _extract_parser()._actions if a.dest != "help"]
    dests = {a.dest for a in actions}
    fields = {f.name for f in dataclasses.fields(ExtractOptions)}
    cli_fields = {RENAMED.get(d, d) for d in dests - set(EXTRACT_ROUTING_ARGS)}
    assert cli_fields <= fields, f"CLI flags without an ExtractOptions field: {cli_fields - fields}"
    assert fields - cli_fields == API_ONLY
    flags = {s for a in actions if a.dest not in EXTRACT_ROUTING_ARGS for s in a.option_strings
             if s.startswith("--")}
    assert flags == set(CLI_VALUES), "give every new flag a non-default value in CLI_VALUES"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, text_manifest) -> dict[str, ExtractOptions]:
    """Replace both extraction paths by recorders of the options they are given."""
    import extract.distributed
    import extract.runner
    import pipeline.manifest

    seen: dict[str, ExtractOptions] = {}

    class Done:
        failed: dict[str, str] = {}

        def render(self) -> str:
            return "done"

    def local(manifest, encoder, root, options=None, **kw):
        seen["local"] = ExtractOptions.of(options, **kw)
        return Done()

    def dask(manifest, encoder, root, options=None, *, scheduler, **kw):
        seen["dask"] = ExtractOptions.of(options, **kw)
        return Done()

    monkeypatch.setattr(extract.runner, "run_extract", local)
    monkeypatch.setattr(extract.distributed, "run_extract_distributed", dask)
    monkeypatch.setattr(pipeline.manifest, "load_manifest", lambda path: text_manifest)
    return seen


def test_every_cli_option_reaches_both_paths(captured, tmp_path: Path) -> None:
    argv = ["extract", "--manifest", "m.csv", "--encoder", "minilm", "--artifacts", str(tmp_path)]
    shared = list(argv)
    for flag, (value, _field, _expected) in CLI_VALUES.items():
        given = [flag] if value is None else [flag, value]
        argv += given
        shared += [] if flag in LOCAL_ONLY else given
    assert main(argv) == 0
    assert main([*shared, "--scheduler", "tcp://127.0.0.1:1"]) == 0
    local, dask = captured["local"], captured["dask"]
    assert local == dataclasses.replace(dask, **{CLI_VALUES[f][1]: CLI_VALUES[f][2] for f in LOCAL_ONLY})
    defaults = ExtractOptions()
    for _flag, (_value, field, expected) in CLI_VALUES.items():
        assert getattr(local, field) == expected != getattr(defaults, field), field


def test_local_only_flags_are_refused_with_a_scheduler(captured, tmp_path: Path) -> None:
    argv = ["extract", "--manifest", "m.csv", "--encoder", "minilm", "--artifacts", str(tmp_path),
            "--scheduler", "tcp://127.0.0.1:1"]
    for flag in LOCAL_ONLY:
        assert main([*argv, flag]) == 2
    assert "dask" not in captured


def test_dask_path_hands_the_options_to_every_shard(image_manifest, tmp_path, monkeypatch) -> None:
    import extract.distributed as dist
    import extract.runner

    class FakeClient:
        def nthreads(self):
            return {"w1": 1, "w2": 1}

        def submit(self, fn, *args, key, pure, resources):
            return fn(*args)

        def gather(self, futures):
            return futures

    seen = []

    def fake_run(manifest, encoder, root, options):
        seen.append(options)
        from extract.summary import ExtractSummary

        return ExtractSummary(encoder, Path(root), len(manifest), 0, 0, {}, 0.0, 0.0, "cpu")

    monkeypatch.setattr(dist, "get_client", lambda scheduler: (FakeClient(), False))
    monkeypatch.setattr(extract.runner, "run_extract", fake_run)
    options = ExtractOptions(batch_size=3, num_workers=2, allow_download=True, lock_timeout=4.0,
                             equalize=True, device="cpu", limit=4, progress=True,
                             backend="onnxruntime", threads=1, onnx_cache=tmp_path / "onnx")
    dist.run_extract_distributed(image_manifest, "efficientnet_lite0", tmp_path, options,
                                 scheduler="tcp://x:1")
    assert len(seen) == 2
    for shard in seen:  # unchanged except: the limit is applied by the driver, no bars
        assert shard == dataclasses.replace(options, limit=None, progress=False)
    # defaults that depend on where a shard runs are resolved by the driver, not dropped
    seen.clear()
    dist.run_extract_distributed(image_manifest, "efficientnet_lite0", tmp_path / "f",
                                 ExtractOptions(), scheduler="tcp://x:1")
    from extract.backends.export import default_onnx_cache

    assert {s.onnx_cache for s in seen} == {default_onnx_cache(tmp_path / "f")}
    assert {s.num_workers for s in seen} == {0}  # no forking inside a threaded Dask worker


def test_options_validate_and_reject_unknown_names() -> None:
    with pytest.raises(ConfigError, match="limit"):
        ExtractOptions(limit=-1)
    with pytest.raises(ConfigError, match="batch_size"):
        ExtractOptions(batch_size=0)
    with pytest.raises(ConfigError, match="text mode"):
        ExtractOptions(text_mode="history")
    with pytest.raises(ConfigError, match="Did you mean 'batch_size'"):
        ExtractOptions.of(batch_sise=4)
    assert ExtractOptions.of(None, batch_size=4) == ExtractOptions(batch_size=4)
    assert "progress" not in ExtractOptions().token_fields()
