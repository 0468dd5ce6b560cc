"""A sentence-transformers encoder or cross-encoder as an int8 ONNX graph for onnxruntime (CPU).

Recipe, measured in bench/quantize.py and bench/ingest.py: export the
transformer with `torch.onnx` (the TorchScript exporter; `optimum-onnx` pins an
old transformers), fuse it with onnxruntime's BERT optimizer (one Attention,
SkipLayerNorm and BiasGelu op per layer), then quantise the weights of every
MatMul and Attention op to int8 per output channel, with dynamic (per batch)
uint8 activations. An encoder's graph outputs token states; pooling and
normalisation stay in numpy (`generators.text.embedder`), so the same graph serves any
pooling. A cross-encoder's graph (`head="classifier"`) outputs the logits of its
sequence-classification head (`generators.text.reranker`); an extractive QA model's
(`head="qa"`) its start and end logits (`generators.text.qa_reader`).

The conversion takes a few seconds on first use and is cached on disk under a
key of the model files and this recipe, written atomically.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

# Bump when the recipe below changes: it is part of the cache key and of the embedder fingerprint.
RECIPE_VERSION = "1"
_MODEL_FILES = ("config.json", "tokenizer.json", "modules.json")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag-service" / "onnx"


def cache_key(model_dir: Path) -> str:
    """Identity of the converted graph: model files, weights, the recipe and the onnxruntime version."""
    import onnxruntime

    digest = hashlib.sha1(f"{RECIPE_VERSION}|{onnxruntime.__version__}".encode())
    for name in _MODEL_FILES:
        path = model_dir / name
        if path.is_file():
            digest.update(path.read_bytes())
    for weights in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        stat = weights.stat()
        digest.update(f"{weights.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


GraphHead = Literal["encoder", "classifier", "qa"]


def int8_onnx_path(model_dir: Path, cache_dir: Path | None = None, *, head: GraphHead = "encoder") -> Path:
    """The cached int8 graph of `model_dir` (token states, a classifier's logits, or a QA head's start and end
    logits), converted first when absent."""
    folder = cache_dir or default_cache_dir()
    suffix = "" if head == "encoder" else f".{head}"
    target = folder / f"{model_dir.name}-{cache_key(model_dir)}{suffix}.int8.onnx"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        log.info("Converting %s to int8 ONNX (once, cached at %s)", model_dir, target)
        export_int8(model_dir, target, head=head)
    return target


def cpu_session(path: Path, *, threads: int | None = None):  # noqa: ANN201 - an onnxruntime.InferenceSession
    """An onnxruntime CPU session of the graph at `path` for a model that answers requests: `threads` per call
    (None: onnxruntime's default, every core), idle threads sleeping instead of spinning, since spinning ones take
    the cores that the other requests, the embedder and the ingest need (bench/RESULTS.md: 1.4x the answers/s at
    32 clients, and faster alone)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def graph_inputs(tokenizer) -> list[str]:
    """The encoder inputs the graph takes, in order (BERT: ids, mask, token types)."""
    names = list(tokenizer.model_input_names)
    return [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in names] or ["input_ids", "attention_mask"]


def export_int8(model_dir: Path, target: Path, *, head: GraphHead = "encoder") -> Path:
    """Export, fuse and quantise the transformer in `model_dir` to `target` (atomic replace)."""
    with tempfile.TemporaryDirectory(prefix="rag-onnx-", dir=target.parent) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        config = _export_fp32(model_dir, fp32, head)
        fused = _fuse(fp32, Path(tmp) / "fused.onnx", config)
        staged = Path(tmp) / target.name
        _quantize(fused, staged)
        os.replace(staged, target)
    return target


def _export_fp32(model_dir: Path, out: Path, head: GraphHead = "encoder"):
    import torch
    from transformers import (AutoModel, AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                              AutoTokenizer)

    token_axes = {0: "batch", 1: "sequence"}
    # float32 whatever the checkpoint holds (the shipped reranker and reader are float16): quantised from it
    if head == "encoder":
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
        outputs = {"last_hidden_state": token_axes}
    elif head == "classifier":
        model = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), attn_implementation="eager", dtype=torch.float32).eval()
        outputs = {"logits": {0: "batch"}}
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(
            str(model_dir), attn_implementation="eager", dtype=torch.float32).eval()
        outputs = {"start_logits": token_axes, "end_logits": token_axes}
    names = graph_inputs(AutoTokenizer.from_pretrained(str(model_dir)))

    class Encoder(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            result = self.inner(**dict(zip(names, inputs, strict=True)))
            return tuple(getattr(result, name) for name in outputs)

    example = torch.ones(2, 16, dtype=torch.long)
    args = tuple(example if n != "token_type_ids" else torch.zeros_like(example) for n in names)
    axes = {n: token_axes for n in names} | outputs
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the mask helpers: shapes stay dynamic
        torch.onnx.export(Encoder(model), args, str(out), input_names=names, output_names=list(outputs),
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    return model.config


def _fuse(src: Path, out: Path, config) -> Path:
    """onnxruntime's BERT fusions; on a graph they do not match, the model passes through unfused."""
    from onnxruntime.transformers import optimizer

    optimized = optimizer.optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size, opt_level=0)
    log.debug("Fused operators: %s", optimized.get_fused_operator_statistics())
    optimized.save_model_to_file(str(out))
    return out


def _quantize(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic advises "pre-processing" through the root logger
    try:
        quantize_dynamic(
            str(src), str(out), per_channel=True, weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops defeat shape inference
        )
    finally:
        root.setLevel(level)
