"""`rag image|caption|video|complete`: the generators beyond answers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.shared import SeedOption, app, err, out, progress_bar, user_errors
from rag.settings import Settings


# -- generators beyond answers: images, captions, video, plain completions --
StepsOption = Annotated[int | None, typer.Option("--steps", min=1, max=100, help="Denoising steps (default: settings).")]
GuidanceOption = Annotated[float | None, typer.Option("--guidance", min=0, max=30, help="Guidance scale.")]
NegativeOption = Annotated[str | None, typer.Option("--negative", help="What the output should not show.")]


def _size(size: str) -> tuple[int, int]:
    try:
        width, height = (int(side) for side in size.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"{size!r}: give WIDTHxHEIGHT, e.g. 512x512") from None
    return width, height


def _step_bar(label: str):
    """A progress bar driven by a generator's on_step(step, total) callback."""
    bar = progress_bar(label)
    task = bar.add_task(label, total=None)

    def on_step(step: int, total: int) -> None:
        bar.update(task, completed=step, total=total)

    return bar, on_step


@app.command()
def image(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG file (with --n > 1: out-1.png, out-2.png...).")],
    negative: NegativeOption = None,
    n: Annotated[int, typer.Option("--n", min=1, max=4, help="How many images.")] = 1,
    size: Annotated[str, typer.Option("--size", help="WIDTHxHEIGHT, multiples of 8.")] = "512x512",
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: SeedOption = None,
) -> None:
    """Draw PROMPT with the text→image model (RAG_MEDIA__IMAGE_MODEL; `rag models` names the default)."""
    from rag.components import build_media_models

    with user_errors():
        settings = Settings()
        width, height = _size(size)
        bar, on_step = _step_bar("drawing")
        with bar, build_media_models(settings).use("image") as drawer:
            result = drawer.run(prompt, negative_prompt=negative, n=n, width=width, height=height, steps=steps,
                                guidance=guidance, seed=seed, on_step=on_step)
    paths = [output] if n == 1 else [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(1, n + 1)]
    output.parent.mkdir(parents=True, exist_ok=True)
    for picture, path in zip(result.images, paths, strict=True):
        picture.save(path, format="PNG")
        out.print(str(path))
    err.print(f"[dim]seed {result.seed}, {result.steps} steps, guidance {result.guidance:g}[/dim]")


@app.command()
def caption(
    picture: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The image file.")],
    heatmap: Annotated[Path | None, typer.Option("--heatmap", help="Also write where the model looked, per word (PNG).")] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Text the caption continues.")] = None,
) -> None:
    """Describe the image in words (RAG_MEDIA__CAPTION_MODEL)."""
    from generators.media.captioner import render_heatmap
    from rag.components import build_media_models

    with user_errors():
        with build_media_models(Settings()).use("caption") as captioner:
            result = captioner.run(picture, prompt=prompt)
            if heatmap is not None:
                render_heatmap(picture, captioner.heatmap(picture, result), heatmap)
    out.print(result.text)
    if heatmap is not None:
        err.print(f"[dim]heat map: {heatmap}[/dim]")


@app.command()
def video(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 file.")],
    negative: NegativeOption = None,
    frames: Annotated[int | None, typer.Option("--frames", min=1, max=64, help="Frames (default: settings).")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT, multiples of 8 (default: the model's).")] = None,
    steps: StepsOption = None,
    guidance: GuidanceOption = None,
    seed: SeedOption = None,
) -> None:
    """Render PROMPT as a short H.264 MP4 (RAG_MEDIA__VIDEO_MODEL)."""
    from generators.media.video import write_mp4
    from rag.components import build_media_models

    with user_errors():
        width, height = _size(size) if size else (None, None)
        bar, on_step = _step_bar("rendering")
        with bar, build_media_models(Settings()).use("video") as maker:
            result = maker.run(prompt, negative_prompt=negative, frames=frames, steps=steps, guidance=guidance,
                               width=width, height=height, seed=seed, on_step=on_step)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(result, output)
    out.print(str(output))
    err.print(f"[dim]{len(result.frames)} frames at {result.fps} fps, seed {result.seed}[/dim]")


@app.command()
def complete(
    prompt: Annotated[str, typer.Argument(help="The text to continue.")],
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, max=2048)] = 64,
    temperature: Annotated[float, typer.Option("--temperature", min=0, max=2, help="0: greedy.")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.01, max=1)] = 1.0,
    seed: SeedOption = None,
) -> None:
    """Continue PROMPT with the generator (as the classic GPT-2 example does), streaming the text."""
    from generators.text.text_generators import Sampling
    from rag.components import build_generator

    with user_errors():
        generator = build_generator(Settings())
        sampling = Sampling(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
        out.print(prompt, end="")
        for piece in generator.stream_complete(prompt, sampling):
            out.print(piece, end="", soft_wrap=True)
        out.print()
