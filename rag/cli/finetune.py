"""`rag finetune reader|reranker|embedder`: train the models this project ships, on your data or public data."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from generators import model_names
from rag.cli.shared import JsonOption, WorkOption, app, err, progress_bar, user_errors
from rag.settings import Settings


finetune_app = typer.Typer(help="Fine-tune models on SQuAD-format or BEIR data (yours or public).", no_args_is_help=True)
app.add_typer(finetune_app, name="finetune")

OFFLINE_ENCODER = model_names.EMBEDDER.name
OutDirOption = Annotated[Path, typer.Option("--out", help="Folder for checkpoints and the trained model.")]
BaseOption = Annotated[str, typer.Option("--base", help="Model to start from: Hub name, local path or packaged model.")]
EvalLimitOption = Annotated[int, typer.Option("--eval-limit", min=0, help="Held-out questions evaluated each time (0 = all).")]
MaxExamplesOption = Annotated[int, typer.Option("--max-examples", min=0, help="Train on at most N questions, spread over paragraphs (0 = all).")]
EpochsOption = Annotated[float, typer.Option("--epochs", min=0.0)]
MaxStepsOption = Annotated[int, typer.Option("--max-steps", help="Stop after N optimizer steps (overrides --epochs).")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", min=1)]
LearningRateOption = Annotated[float, typer.Option("--lr", min=0.0)]
MaxSeqLenOption = Annotated[int, typer.Option("--max-seq-len", min=32, help="Tokens per input (question + passage).")]
EvalStepsOption = Annotated[int, typer.Option("--eval-steps", min=1, help="Evaluate on held-out data every N steps.")]
SaveStepsOption = Annotated[int, typer.Option("--save-steps", min=1, help="Checkpoint every N steps.")]
ThreadsOption = Annotated[int | None, typer.Option("--threads", min=1, help="CPU threads for torch.")]
TrainSeedOption = Annotated[int, typer.Option("--seed")]
SaveDtypeOption = Annotated[str, typer.Option("--save-dtype", help="float16 (half the size) or float32.")]
ResumeOption = Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in --out.")]


def _train(run, out: Path):
    """Run a trainer with user errors made plain and stdout kept for --json
    (transformers' progress callback prints its logs to stdout)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return run()
    except FileExistsError:
        raise ValueError(f"{out} holds checkpoints of an earlier run: add --resume to continue it, "
                         "or choose another --out") from None


def _check_dtype(save_dtype: str) -> None:
    if save_dtype not in ("float16", "float32"):
        err.print(f"[red]error:[/red] --save-dtype must be float16 or float32, not {save_dtype!r}")
        raise typer.Exit(2)


def _config(config_type, options: dict):
    """A trainer's configuration from a command's options: each option named like one of its fields sets it."""
    names = {field.name for field in dataclasses.fields(config_type)}
    return config_type(**{name: value for name, value in options.items() if name in names})


def _report_training(result, as_json: bool, metrics: tuple[str, ...]) -> None:
    summary = {"out": str(result.out_dir), **{k: v for k, v in dataclasses.asdict(result).items() if k != "out_dir"}}
    if as_json:
        print(json.dumps(summary))
        return
    out_console = Console()
    out_console.print(f"saved to {summary['out']} after {summary['steps']} steps ({summary['seconds']:.0f} s)")
    if summary["evaluations"]:
        last = summary["evaluations"][-1]
        out_console.print("held-out " + "  ".join(f"{m} {last[m]:.3f}" for m in metrics if m in last))


@finetune_app.command("reader")
def finetune_reader(
    squad: Annotated[list[Path], typer.Option("--squad", exists=True, dir_okay=False, help="SQuAD-format training file (repeatable).")],
    out: OutDirOption,
    base: BaseOption = OFFLINE_ENCODER,
    eval_squad: Annotated[Path | None, typer.Option("--eval-squad", exists=True, dir_okay=False, help="Held-out SQuAD-format file (default: the last --holdout-articles of the first --squad file).")] = None,
    holdout_articles: Annotated[int, typer.Option("--holdout-articles", min=0, help="Articles held out of training for evaluation when no --eval-squad.")] = 10,
    eval_limit: EvalLimitOption = 300,
    max_examples: MaxExamplesOption = 0,
    epochs: EpochsOption = 1.0,
    max_steps: MaxStepsOption = -1,
    batch_size: BatchSizeOption = 16,
    learning_rate: LearningRateOption = 1e-4,
    max_seq_len: MaxSeqLenOption = 256,
    stride: Annotated[int, typer.Option("--stride", min=0, help="Tokens shared by consecutive windows of a long paragraph.")] = 64,
    eval_steps: EvalStepsOption = 250,
    save_steps: SaveStepsOption = 250,
    threads: ThreadsOption = None,
    seed: TrainSeedOption = 42,
    save_dtype: SaveDtypeOption = "float16",
    resume: ResumeOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fine-tune an extractive QA reader (use it with RAG_READER__MODEL=DIR); EM / F1 on held-out questions every --eval-steps."""
    from generators.training.reader import ReaderTrainingConfig
    from rag.finetune import finetune_reader as run_finetune, reader_data

    options = dict(locals())
    _check_dtype(save_dtype)
    with user_errors():
        data = reader_data(squad, eval_squad=eval_squad, holdout_articles=holdout_articles, eval_limit=eval_limit,
                           max_examples=max_examples or None, seed=seed)
        err.print(f"training on {len(data.train)} questions; {len(data.heldout)} held-out from {data.heldout_source or '-'}")
        config = _config(ReaderTrainingConfig, options)
        result = _train(lambda: run_finetune(data, base, out, config, resume=resume), out)
    _report_training(result, as_json, ("em", "f1", "contains"))


RankingSquadOption = Annotated[Path | None, typer.Option("--squad", exists=True, dir_okay=False, help="SQuAD-format file: each question's paragraph is its relevant passage.")]
RankingBeirOption = Annotated[Path | None, typer.Option("--beir", exists=True, file_okay=False, help="BEIR folder: qrels of --split give the relevant documents.")]
SplitOption = Annotated[str, typer.Option("--split", help="BEIR qrels split to train on.")]
HoldoutOption = Annotated[int, typer.Option("--holdout", min=0, help="Last N articles (SQuAD) or queries (BEIR) held out for evaluation.")]
NegativesOption = Annotated[int, typer.Option("--negatives", min=1, max=50, help="Hard negatives per query, mined with BM25 + the embedder.")]


def _train_ranker(trainer_type, config_type, options: dict):
    """Mine ranking examples (with hard negatives) as the options say, then train on them: the reranker's and the
    embedder's commands differ only in the trainer and its defaults."""
    from rag.finetune import ranking_data

    with progress_bar("mining negatives") as progress:
        task = progress.add_task("queries", total=None)
        data = ranking_data(
            Settings(), work=options["work"], squad=options["squad"], beir=options["beir"], split=options["split"],
            holdout=options["holdout"], eval_limit=options["eval_limit"], max_examples=options["max_examples"] or None,
            negatives=options["negatives"], seed=options["seed"],
            on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    err.print(f"training on {len(data.train)} queries; {len(data.heldout)} held-out from {data.heldout_source}")
    trainer = trainer_type(options["base"], options["out"], _config(config_type, options), heldout=data.heldout)
    return _train(lambda: trainer.run(data.train, resume=options["resume"]), options["out"])


def _ranking_command(name: str, trainer: str, config: str, *, negatives: int, learning_rate: float,
                     save_dtype: str, doc: str) -> None:
    """Register `rag finetune NAME`: the reranker's and the embedder's commands differ in the trainer and defaults."""

    def command(
        out: OutDirOption,
        squad: RankingSquadOption = None,
        beir: RankingBeirOption = None,
        split: SplitOption = "train",
        base: BaseOption = OFFLINE_ENCODER,
        holdout: HoldoutOption = 10,
        eval_limit: EvalLimitOption = 300,
        max_examples: MaxExamplesOption = 0,
        negatives: NegativesOption = negatives,
        epochs: EpochsOption = 1.0,
        max_steps: MaxStepsOption = -1,
        batch_size: BatchSizeOption = 32,
        learning_rate: LearningRateOption = learning_rate,
        max_seq_len: MaxSeqLenOption = 256,
        eval_steps: EvalStepsOption = 250,
        save_steps: SaveStepsOption = 250,
        threads: ThreadsOption = None,
        seed: TrainSeedOption = 42,
        save_dtype: SaveDtypeOption = save_dtype,
        work: WorkOption = Path(".rag-finetune"),
        resume: ResumeOption = False,
        as_json: JsonOption = False,
    ) -> None:
        import importlib

        options = dict(locals())
        module = importlib.import_module(f"generators.training.{name}")  # torch and friends: only when training
        _check_dtype(save_dtype)
        with user_errors():
            result = _train_ranker(getattr(module, trainer), getattr(module, config), options)
        _report_training(result, as_json, ("accuracy@1", "mrr"))

    command.__doc__ = doc
    finetune_app.command(name)(command)


_ranking_command("reranker", "RerankerTrainer", "RerankerTrainingConfig", negatives=3, learning_rate=5e-5,
                 save_dtype="float16",
                 doc="Fine-tune a cross-encoder reranker (use it with RAG_RERANK__MODEL=DIR); accuracy@1 and MRR on "
                     "held-out queries.")
_ranking_command("embedder", "EmbedderTrainer", "EmbedderTrainingConfig", negatives=1, learning_rate=2e-5,
                 save_dtype="float32",
                 doc="Adapt the embedder to a corpus with in-batch negatives (use it with RAG_EMBEDDER__MODEL=DIR; "
                     "the next ingest re-embeds).")
