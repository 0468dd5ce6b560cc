"""int8 weights for the Linear layers of a sentence-transformers model (CPU inference).

Per-output-channel scales keep the vectors close to fp32, where a per-tensor
scale loses too much on MiniLM. The feed-forward output projections are left in
fp32: their inputs (GELU outputs) carry the outliers that dynamic per-tensor
activation scales handle worst, and skipping them costs little speed.
Measured in bench/quantize.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

# BERT-style names of the feed-forward output projections (not the attention's).
DEFAULT_KEEP_FP32 = ("layer.*.output.dense",)


def _keeps_fp32(name: str, keep: Sequence[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(name, f"*{pattern}") for pattern in keep) and ".attention." not in name


def quantize_linear_int8(model: torch.nn.Module, keep_fp32: Sequence[str] = DEFAULT_KEEP_FP32) -> torch.nn.Module:
    """Replace the `nn.Linear` layers of `model` by dynamically quantised int8 ones; returns `model`."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    targets = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not _keeps_fp32(name, keep_fp32)
    }
    with warnings.catch_warnings():
        # torch.ao eager quantisation is deprecated in favour of torchao, yet it is
        # the one that ships in the torch wheel and runs on fbgemm today.
        warnings.simplefilter("ignore")
        quantize_dynamic(model, targets, dtype=torch.qint8, inplace=True)
    return model
