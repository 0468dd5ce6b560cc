"""What the trainers share: the `ModelTrainer` base, checkpoint folders, resume, and held-out evaluation every N steps."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence, Sized
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Literal

from generators.resolve import resolve_device, resolve_model

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
EVALUATIONS = "evaluations.jsonl"
TRAINING_INFO = "training.json"


@dataclass(frozen=True)
class TrainingConfig:
    """What every trainer here is configured with; each role's config changes the defaults it needs."""

    max_seq_len: int = 256
    batch_size: int = 32
    learning_rate: float = 5e-5
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    eval_steps: int = 250
    save_steps: int = 250
    keep_checkpoints: int = 2
    seed: int = 42
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    device: Literal["auto", "cpu", "cuda"] = "auto"
    save_dtype: Literal["float32", "float16"] = "float16"  # half the size on disk


def uses_cpu(device: str) -> bool:
    return resolve_device(device) == "cpu"


def training_arguments(config, out_dir: Path, **extra) -> dict:
    """The (transformers or sentence-transformers) training arguments every trainer here shares: linear
    schedule with warmup, checkpoints in `out_dir/checkpoints`, evaluation by our own callback only."""
    return dict(
        output_dir=str(out_dir / CHECKPOINTS),
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.keep_checkpoints,
        logging_steps=max(1, min(50, config.save_steps)),
        eval_strategy="no",
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=uses_cpu(config.device),
        dataloader_num_workers=0,
        **extra,
    )


def checkpoint_to_resume(out_dir: Path, resume: bool) -> str | None:
    """The checkpoint a resumed run starts from; refuses to mix a fresh run into an old one's folder."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = out_dir / CHECKPOINTS
    has_checkpoints = checkpoints.is_dir() and any(checkpoints.iterdir())
    if not resume:
        if has_checkpoints:
            raise FileExistsError(f"{checkpoints} holds checkpoints of an earlier run: resume it, or choose another out_dir")
        (out_dir / EVALUATIONS).unlink(missing_ok=True)
        return None
    last = get_last_checkpoint(str(checkpoints)) if has_checkpoints else None
    if last is None:
        log.warning("No checkpoint in %s: training from the start", checkpoints)
    return last


def evaluation_callback(evaluate: Callable[[], dict[str, float]], every: int, out_dir: Path, model_of: Callable):
    """A `TrainerCallback` that runs `evaluate()` every `every` steps and once at the end, in eval mode,
    appending each row to `evaluations.jsonl` (kept across resumes) and to the trainer's log."""
    from transformers import TrainerCallback

    path = out_dir / EVALUATIONS

    class EvaluateEvery(TrainerCallback):
        def __init__(self) -> None:
            self.last_step = -1
            self.trainer = None  # set after the trainer exists, to log through it

        def _run(self, state) -> None:
            model = model_of()
            model.eval()
            try:
                metrics = evaluate()
            finally:
                model.train()
            self.last_step = state.global_step
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **metrics}
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            if self.trainer is not None:
                self.trainer.log({f"heldout_{k}": v for k, v in metrics.items()})

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % every == 0:
                self._run(state)

        def on_train_end(self, args, state, control, **kwargs):
            if self.last_step != state.global_step:
                self._run(state)

    return EvaluateEvery()


def read_evaluations(out_dir: Path) -> list[dict]:
    path = out_dir / EVALUATIONS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_training_info(out_dir: Path, info: dict) -> None:
    (out_dir / TRAINING_INFO).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")


class ModelTrainer:
    """What every trainer here does around its own model, data and loss: threads, resuming from the last
    checkpoint, resolving the base model, timing the run, and writing `training.json` beside the weights."""

    base_role: ClassVar[str] = "base encoder"  # named in the error when the base model resolves nowhere
    config_type: ClassVar[type[TrainingConfig]] = TrainingConfig

    def __init__(self, base: str, out_dir: Path, config: TrainingConfig | None = None, *,
                 setting: str = "--base") -> None:
        self.base = base
        self.out_dir = Path(out_dir)
        self.config = config or self.config_type()
        self.setting = setting

    def _begin(self, examples: Sized, resume: bool) -> tuple[str | None, str]:
        """(the checkpoint to resume from, the base model's folder), after the checks every run makes."""
        import torch

        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        if not examples:
            raise ValueError("no training examples")
        last = checkpoint_to_resume(self.out_dir, resume)
        return last, str(resolve_model(self.base, role=self.base_role, setting=self.setting).path)

    def _train(self, trainer, callbacks: list, last: str | None) -> float:
        """Run `trainer` (from `last`, if resuming) with the evaluation `callbacks` logging through it: seconds."""
        for callback in callbacks:
            callback.trainer = trainer
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=last)
        return round(time.perf_counter() - started, 1)

    def _save(self, model, tokenizer=None) -> None:
        """The trained weights (in `save_dtype`) and tokenizer into `out_dir`, beside the checkpoints."""
        import torch

        if self.config.save_dtype == "float16":
            model = model.to(torch.float16)
        model.save_pretrained(str(self.out_dir))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(self.out_dir))

    def _finish(self, result):
        """`result` (a dataclass), also written to `training.json` with the configuration."""
        write_training_info(self.out_dir, {**asdict(result), "config": asdict(self.config)})
        return result


class RankingTrainer(ModelTrainer):
    """A trainer of ranking models (reranker, embedder), evaluated on held-out ranking examples."""

    def __init__(self, base: str, out_dir: Path, config: TrainingConfig | None = None, *, heldout: Sequence = (),
                 setting: str = "--base") -> None:
        super().__init__(base, out_dir, config, setting=setting)
        self.heldout = list(heldout)
