"""Tiny random-weight models (a causal LM, text→image, captioners, text→video), saved like Hub snapshots.

They test plumbing only: formats, seeds, progress, loading through `from_pretrained`. Never quality.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from generators.resolve import resolve_model


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP byte-level BPE alphabet: one printable character for each of the 256 bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _tiny_clip_tokenizer(folder: Path):
    """A byte-level BPE CLIP tokenizer: the 256 byte symbols (bare and word-final) and a few merges."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    merges = ["t h", "th e</w>", "c a", "ca t</w>", "o g</w>", "d og</w>"]
    vocab_tokens = symbols + [s + "</w>" for s in symbols] + [m.replace(" ", "") for m in merges]
    vocab_tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    # 77 positions like real CLIP: the pipeline pads every prompt to model_max_length.
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def build_tiny_text_to_image(folder: Path) -> Path:
    """Save a tiny random-weight Stable Diffusion pipeline (UNet + VAE + CLIP) to `folder`; returns it.

    The VAE downsamples 8× like the real one, so image sizes behave as in production.
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as files:  # save_pretrained writes the tokenizer into the pipeline
        tokenizer = _tiny_clip_tokenizer(Path(files))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=2, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=4,
        block_out_channels=(4, 4, 4, 4), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing",
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder)
    return folder


def _bert_tokenizer():
    from transformers import AutoTokenizer

    path = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="X").path
    return AutoTokenizer.from_pretrained(str(path))


def _never_special(bias, tokenizer) -> None:
    """Random weights may pick [SEP] (stop) or [PAD] (dropped when decoding) first: rule them out."""
    import torch

    with torch.no_grad():
        bias[tokenizer.all_special_ids] = -1e4


def build_tiny_git(folder: Path) -> Path:
    """A 2-layer GIT with random weights, the offline BERT tokenizer and a 32-pixel CLIP processor: plumbing only."""
    import torch
    from transformers import CLIPImageProcessor, GitConfig, GitForCausalLM, GitProcessor

    torch.manual_seed(0)
    tokenizer = _bert_tokenizer()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2)
    config = GitConfig(vision_config=vision, vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64,
                       bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                       pad_token_id=tokenizer.pad_token_id)
    model = GitForCausalLM(config)
    _never_special(model.output.bias, tokenizer)
    model.save_pretrained(folder)
    GitProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_tiny_blip(folder: Path) -> Path:
    """A 2-layer BLIP captioner with random weights (no centre crop: the image is squashed to 32×32)."""
    import torch
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    torch.manual_seed(0)
    tokenizer = _bert_tokenizer()
    text = dict(vocab_size=len(tokenizer), hidden_size=32, encoder_hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64,
                bos_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
    # BLIP's vision default initializer_range (1e-10) makes every patch alike: the attention would be flat.
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=2, initializer_range=0.02)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision))
    _never_special(model.text_decoder.cls.predictions.bias, tokenizer)
    model.save_pretrained(folder)
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


# A plain "[CLS]USER: <image>question\nASSISTANT:" format, like llava-1.5's, for the tiny LLaVA below. It starts
# with the BOS token, so the processor adds no special tokens (BERT's would end the prompt with [SEP]).
TINY_VLM_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def build_tiny_llava(folder: Path) -> Path:
    """A 2-layer LLaVA (CLIP vision tower + Llama) with random weights: a chat VLM for plumbing only.

    The tokenizer is the offline BERT WordPiece one with an `<image>` token and a chat
    template; the processor expands `<image>` into one token per patch (32/8 = 4×4 = 16:
    CLIP's CLS is counted, then dropped, as `vision_feature_select_strategy="default"` does).
    """
    import torch
    from transformers import (CLIPImageProcessor, GenerationConfig, LlavaConfig, LlavaForConditionalGeneration,
                              LlavaProcessor)

    torch.manual_seed(0)
    tokenizer = _bert_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tokenizer.bos_token = tokenizer.cls_token  # what the template starts with
    tokenizer.chat_template = TINY_VLM_CHAT_TEMPLATE
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    vision = dict(model_type="clip_vision_model", image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
    text = dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_id=image_token_id,
                         image_seq_length=16, vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = LlavaForConditionalGeneration(config)
    # Llama's head has no bias to push down (as `_never_special` does): tell generate never to pick a special
    # token instead ([SEP] would stop at once, [PAD] and `<image>` would vanish when decoding).
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.cls_token_id,
                                               eos_token_id=tokenizer.sep_token_id,
                                               pad_token_id=tokenizer.pad_token_id,
                                               suppress_tokens=list(tokenizer.all_special_ids))
    model.save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=TINY_VLM_CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    return folder


def build_tiny_causal_lm(folder: Path, *, chat_template: str | None = None) -> Path:
    """A 2-layer GPT-2 with random weights and the offline MiniLM WordPiece tokenizer, saved like a Hub model."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    minilm = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="RAG_EMBEDDER__MODEL")
    tokenizer = AutoTokenizer.from_pretrained(str(minilm.path))
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=96, n_embd=32, n_layer=2, n_head=2,
        # An end token random weights rarely pick, so greedy decoding produces some text.
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("[unused0]"),
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


TINY_VIDEO_SIZE = 32  # pixels; the VAE halves it, the UNet halves it once more


def build_tiny_text_to_video(folder: Path, *, seed: int = 0) -> Path:
    """Save a tiny random `TextToVideoSDPipeline` to `folder` (the bench uses it too).

    A 2-level UNet3D, a 2-level VAE, a 2-layer CLIP text encoder and, standing
    in for CLIP's tokenizer, the offline BERT WordPiece tokenizer (so no Hub);
    the scheduler is DDIM, as in damo-vilab/text-to-video-ms-1.7b.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    minilm = resolve_model("sentence-transformers/all-MiniLM-L6-v2", role="embedder", setting="X").path
    tokenizer = AutoTokenizer.from_pretrained(str(minilm))
    # CLIP's context length: the pipeline pads every prompt to the tokenizer's maximum.
    tokenizer.model_max_length = 77
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=16,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    unet = UNet3DConditionModel(
        sample_size=TINY_VIDEO_SIZE // 2, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4,
        sample_size=TINY_VIDEO_SIZE,
    )
    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              set_alpha_to_one=False)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                 scheduler=scheduler)
    pipe.save_pretrained(folder)
    return folder
