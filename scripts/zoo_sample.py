"""Models nobody picked for the zoo: a seeded random draw from timm, and Hugging Face transformers families.

Every builder takes no arguments, so the converter CLI can name it (`file.py:callable`):

    python -m converter convert scripts/zoo_sample.py:timm__resnet18 --input-shape 1,3,224,224 ...
    python -m converter convert scripts/zoo_sample.py:hf_bert --input-shape 1,16 --input-dtype int64 ...

`timm__<architecture>` is any name in `timm.list_models()`, resolved by the module's `__getattr__` (one
spelling for 1,371 architectures instead of a generated file per model). `HF` lists the transformers
families with their inputs; `draw_timm` draws N timm architectures under the budget rules in `RULES`.

Weights are random (timm `pretrained=False`; transformers models built from config objects) and seeded
(`torch.manual_seed(0)` before each builder). Nothing here reaches the network: HF_HUB_OFFLINE is set before
transformers or timm is imported by a builder, and scripts/zoo.py sets it for every converter process.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from zoo_models import Entry

SEED = 0
TIMM_PREFIX = "timm__"
HERE = "scripts/zoo_sample.py"


class SampleEntry(Entry):
    """A zoo entry whose builder lives in this module."""

    @property
    def model(self) -> str:
        return f"{HERE}:{self.name}"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _alive(model: nn.Module) -> nn.Module:
    """An all-zero weight matrix (a zero-initialised head) makes every output the same whatever the input, and
    parity against such outputs proves nothing: give those N(0, 0.02). Biases and norms stay as built."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0.0, 0.02)
    return model


def _norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


# As in scripts/zoo_models.py: fresh BatchNorm layers (mean 0, variance 1) normalise nothing in eval mode, and a
# random CNN's output then barely depends on its input (measured on two seeded inputs, output spread relative to
# its scale: timm's ghostnet_100 1.6e-3, repvit_m2_3 1.3e-5, efficientvit_b2 2.6e-6), so parity could not fail.
LIVE_BN = "BatchNorm statistics from a seeded random batch (fresh ones let the output stop depending on the input)"


def live_batchnorm(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """`model` in eval mode with every BatchNorm's statistics measured on one seeded standard-normal batch of 8."""
    batch = torch.randn((8, *input_shape[1:]), generator=torch.Generator().manual_seed(SEED))
    model.eval()
    norms = _norms(model)
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # one batch: its statistics exactly
        norm.train()  # only the norms: dropout and stochastic depth stay off
    if norms:
        with torch.no_grad():
            model(batch)
    return model.eval()


# Layer scale (CaiT, EVA, ConvNeXt, ...) starts as a constant 1e-5 or 1e-6 per channel, so a residual block adds
# almost nothing to its input: with class-token pooling (timm's vit_small_patch16_rope_224) the output then varies
# by 9e-6 of its scale across inputs, since the class token hardly sees the image. Trained models learn these.
LAYER_SCALE_LIMIT = 1e-3


def live_layer_scale(model: nn.Module) -> nn.Module:
    """Every parameter whose entries all hold one value v with 0 < |v| <= LAYER_SCALE_LIMIT becomes 1."""
    with torch.no_grad():
        for p in model.parameters():
            flat = p.detach().flatten()
            if flat.numel() > 1 and 0 < abs(float(flat[0])) <= LAYER_SCALE_LIMIT and bool((flat == flat[0]).all()):
                p.fill_(1.0)
    return model


# --- timm ---------------------------------------------------------------------------------------------------

def timm_builder(arch: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        _offline()
        import timm

        torch.manual_seed(SEED)
        model = live_layer_scale(_alive(timm.create_model(arch, pretrained=False)))
        return live_batchnorm(model, (1, *model.pretrained_cfg.get("input_size", (3, 224, 224))))

    build.__name__ = TIMM_PREFIX + arch
    return build


def __getattr__(name: str):
    # Only names that timm knows: a typo stays an AttributeError, which the CLI reports as a usage error.
    if name.startswith(TIMM_PREFIX) and name[len(TIMM_PREFIX):] in _timm_names():
        return timm_builder(name[len(TIMM_PREFIX):])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _timm_names() -> set[str]:
    _offline()
    import timm

    return set(timm.list_models())


@dataclass(frozen=True)
class TimmFacts:
    """What the budget rules look at, read from the model built on the meta device (no memory, no init)."""
    arch: str
    params: int | None = None
    input_size: tuple[int, ...] | None = None  # pretrained_cfg's (C, H, W)
    fixed_input_size: bool = False
    batchnorm: bool = False
    error: str = ""  # why it could not be built on the meta device


def timm_facts(arch: str) -> TimmFacts:
    _offline()
    import timm

    try:
        with torch.device("meta"):
            model = timm.create_model(arch, pretrained=False)
    except Exception as exc:  # noqa: BLE001 - any builder error becomes a stated skip rule
        return TimmFacts(arch, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    return TimmFacts(arch, sum(p.numel() for p in model.parameters()), tuple(cfg.get("input_size") or (3, 224, 224)),
                     bool(cfg.get("fixed_input_size", False)), bool(_norms(model)))


@dataclass(frozen=True)
class Rule:
    name: str
    says: str  # the rule as printed and written into docs/zoo.md
    skips: Callable[[TimmFacts, "Budget"], bool]


@dataclass(frozen=True)
class Budget:
    max_params_m: float = 30.0  # millions of parameters
    max_side: int = 256  # pixels, the larger of the default input's height and width


RULES: tuple[Rule, ...] = (
    Rule("meta_build", "cannot be built on PyTorch's meta device (so its size cannot be measured without "
         "allocating it)", lambda f, b: bool(f.error)),
    Rule("params", "more than {max_params_m:g} M parameters (2 cores and a 10 GB limit per conversion; the "
         "targets are browsers and phones)", lambda f, b: f.params > b.max_params_m * 1e6),
    Rule("input_size", "default input (timm's pretrained_cfg input_size) larger than {max_side}x{max_side}",
         lambda f, b: max(f.input_size[1:]) > b.max_side),
)


@dataclass
class Draw:
    seed: int
    n: int
    budget: Budget
    timm_version: str
    population: int  # len(timm.list_models())
    examined: int = 0  # how far down the shuffled list the draw went
    picked: list[TimmFacts] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # rule name -> architectures, in draw order

    def rules(self) -> list[dict]:
        return [{"name": r.name, "rule": r.says.format(**vars(self.budget)), "skipped": self.skipped.get(r.name, [])}
                for r in RULES]

    def summary(self) -> str:
        skipped = sum(len(v) for v in self.skipped.values())
        lines = [f"timm {self.timm_version}: {self.population} architectures; seed {self.seed}; "
                 f"examined {self.examined} in shuffled order to pick {len(self.picked)}, skipped {skipped}:"]
        lines += [f"  - {len(r['skipped'])} skipped: {r['rule']}" for r in self.rules()]
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {"seed": self.seed, "n": self.n, "timm": self.timm_version, "population": self.population,
                "examined": self.examined, "budget": vars(self.budget), "rules": self.rules(),
                "picked": [f.arch for f in self.picked]}


def draw_timm(n: int, seed: int, budget: Budget = Budget(), names: list[str] | None = None,
              facts: Callable[[str], TimmFacts] = timm_facts) -> Draw:
    """N architectures from timm.list_models(), in the order of a seeded shuffle, skipping only by RULES.

    The same seed, timm version and budget give the same draw: the shuffle depends on nothing else, and each
    rule looks only at the architecture's own definition."""
    _offline()
    import timm

    population = sorted(names if names is not None else timm.list_models())
    order = random.Random(seed).sample(population, len(population))
    draw = Draw(seed, n, budget, timm.__version__, len(population))
    for arch in order:
        if len(draw.picked) == n:
            break
        draw.examined += 1
        f = facts(arch)
        rule = next((r for r in RULES if r.skips(f, budget)), None)
        if rule is None:
            draw.picked.append(f)
        else:
            draw.skipped.setdefault(rule.name, []).append(arch)
    return draw


def timm_entry(f: TimmFacts) -> SampleEntry:
    _, h, w = f.input_size
    return SampleEntry(TIMM_PREFIX + f.arch, ((1, 3, h, w),), family="timm",
                       note=f"timm `{f.arch}`, {f.params / 1e6:.1f} M parameters, default input "
                            f"{h}x{w}" + (" (fixed)" if f.fixed_input_size else "")
                            + (f"; {LIVE_BN}" if f.batchnorm else ""))


# --- Hugging Face transformers ------------------------------------------------------------------------------
# Small configs (2 layers, widths 32-64) so that each family converts in a minute or two; the classes are the
# library's own, with their default attention implementation. Decoders run with use_cache=False: a KV cache
# object is not a tensor output (and a converted graph has no state to carry it).

VOCAB = 1000
TEXT = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=64)


def _hf(factory: Callable[[], nn.Module]) -> nn.Module:
    _offline()
    torch.manual_seed(SEED)
    return _alive(factory()).eval()


class Seq2SeqInputs(nn.Module):
    """An encoder-decoder's forward takes (input_ids, attention_mask, decoder_input_ids, ...): this names the two
    token inputs positionally for the CLI. The output is the library's own Seq2SeqLMOutput, untouched."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, decoder_input_ids: torch.Tensor):
        return self.model(input_ids=input_ids, decoder_input_ids=decoder_input_ids)


def hf_bert():
    import transformers as t
    return _hf(lambda: t.BertModel(t.BertConfig(**TEXT)))


def hf_distilbert():
    import transformers as t
    return _hf(lambda: t.DistilBertModel(t.DistilBertConfig(vocab_size=VOCAB, dim=64, n_layers=2, n_heads=4,
                                                            hidden_dim=128, max_position_embeddings=64)))


def hf_roberta():
    import transformers as t
    return _hf(lambda: t.RobertaModel(t.RobertaConfig(**{**TEXT, "max_position_embeddings": 66})))


def hf_gpt2():
    import transformers as t
    return _hf(lambda: t.GPT2LMHeadModel(t.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4,
                                                      n_positions=64, use_cache=False,
                                                      bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)))


def hf_llama():
    import transformers as t
    return _hf(lambda: t.LlamaForCausalLM(t.LlamaConfig(**TEXT, num_key_value_heads=2, use_cache=False)))


def hf_qwen2():
    import transformers as t
    return _hf(lambda: t.Qwen2ForCausalLM(t.Qwen2Config(**TEXT, num_key_value_heads=2, use_cache=False)))


def hf_t5():
    import transformers as t
    return _hf(lambda: Seq2SeqInputs(t.T5ForConditionalGeneration(t.T5Config(
        vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, use_cache=False))))


def hf_bart():
    import transformers as t
    return _hf(lambda: Seq2SeqInputs(t.BartForConditionalGeneration(t.BartConfig(
        vocab_size=VOCAB, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=64,
        use_cache=False))))


VISION = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=128)


def hf_vit():
    import transformers as t
    return _hf(lambda: t.ViTModel(t.ViTConfig(**VISION)))


def hf_deit():
    import transformers as t
    return _hf(lambda: t.DeiTForImageClassificationWithTeacher(t.DeiTConfig(**VISION, num_labels=10)))


def hf_swin():
    import transformers as t
    return _hf(lambda: t.SwinModel(t.SwinConfig(image_size=32, patch_size=2, embed_dim=32, depths=[2, 2],
                                                num_heads=[2, 4], window_size=4)))


def hf_convnext():
    import transformers as t
    return _hf(lambda: t.ConvNextModel(t.ConvNextConfig(num_channels=3, hidden_sizes=[16, 32, 64, 128],
                                                        depths=[1, 1, 2, 1])))


def hf_resnet():
    import transformers as t
    return _hf(lambda: t.ResNetForImageClassification(t.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128],
                                                                     depths=[1, 1, 1, 1], num_labels=10)))


def hf_whisper():
    # The encoder on its own: WhisperForAudioClassification mean-pools it over time, and with random weights that
    # average barely moved with the input (relative spread 0.0075 over two inputs; degenerate for parity). And
    # init_std 0.1: with the default 0.02 the sinusoidal positions swamp what the convolutions make of the
    # input (relative spread 0.033; 0.71 with 0.1).
    import transformers as t
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return _hf(lambda: WhisperEncoder(t.WhisperConfig(
        vocab_size=VOCAB, num_mel_bins=16, d_model=64, encoder_layers=2, encoder_attention_heads=4,
        decoder_layers=1, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=32, max_target_positions=32, pad_token_id=VOCAB - 1, bos_token_id=VOCAB - 1,
        eos_token_id=VOCAB - 1, decoder_start_token_id=VOCAB - 2, init_std=0.1)))


def hf_wav2vec2():
    import transformers as t
    return _hf(lambda: t.Wav2Vec2Model(t.Wav2Vec2Config(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4)))


def hf_clip():
    import transformers as t
    return _hf(lambda: t.CLIPModel(t.CLIPConfig(
        text_config=dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=32, bos_token_id=VOCAB - 2,
                         eos_token_id=VOCAB - 1, pad_token_id=VOCAB - 1),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4),
        projection_dim=32)))


def _tokens(*lengths: int) -> tuple[tuple[int, ...], ...]:
    return tuple((1, n) for n in lengths)


_INT = ("int64",)
_IMAGE = ((1, 3, 32, 32),)

HF: list[SampleEntry] = [
    SampleEntry("hf_bert", _tokens(16), _INT, VOCAB, "hf", "BertModel: encoder, absolute positions, tanh pooler"),
    SampleEntry("hf_distilbert", _tokens(16), _INT, VOCAB, "hf", "DistilBertModel: encoder"),
    SampleEntry("hf_roberta", _tokens(16), _INT, VOCAB, "hf",
                "RobertaModel: encoder, positions counted from the non-padding tokens (id 1 is padding)"),
    SampleEntry("hf_gpt2", _tokens(16), _INT, VOCAB, "hf", "GPT2LMHeadModel: decoder, causal mask, use_cache=False"),
    SampleEntry("hf_llama", _tokens(16), _INT, VOCAB, "hf",
                "LlamaForCausalLM: decoder, causal mask, RoPE, RMSNorm, SiLU gate, grouped-query attention"),
    SampleEntry("hf_qwen2", _tokens(16), _INT, VOCAB, "hf",
                "Qwen2ForCausalLM: decoder, causal mask, RoPE, q/k/v biases, grouped-query attention"),
    SampleEntry("hf_t5", _tokens(16, 8), _INT * 2, VOCAB, "hf",
                "T5ForConditionalGeneration: encoder-decoder, relative position buckets; (input_ids, "
                "decoder_input_ids) named by a positional adapter"),
    SampleEntry("hf_bart", _tokens(16, 8), _INT * 2, VOCAB, "hf",
                "BartForConditionalGeneration: encoder-decoder; (input_ids, decoder_input_ids) named by a "
                "positional adapter"),
    SampleEntry("hf_vit", _IMAGE, family="hf", note="ViTModel: vision transformer, 8x8 patches, tanh pooler"),
    SampleEntry("hf_deit", _IMAGE, family="hf",
                note="DeiTForImageClassificationWithTeacher: class and distillation tokens, three logits outputs"),
    SampleEntry("hf_swin", _IMAGE, family="hf", note="SwinModel: shifted windows (4x4), patch merging"),
    SampleEntry("hf_convnext", _IMAGE, family="hf", note="ConvNextModel: depthwise 7x7, LayerNorm, layer scale"),
    SampleEntry("hf_resnet", _IMAGE, family="hf", note="ResNetForImageClassification"),
    SampleEntry("hf_whisper", ((1, 16, 64),), family="hf",
                note="WhisperEncoder: audio encoder (two convolutions, sinusoidal positions) on 16 mel bins x 64 "
                     "frames; init_std 0.1 (0.02 lets the positions swamp the input)"),
    SampleEntry("hf_wav2vec2", ((1, 1600),), family="hf",
                note="Wav2Vec2Model: raw waveform, conv feature encoder with GroupNorm, grouped positional conv"),
    SampleEntry("hf_clip", ((1, 16), (1, 3, 32, 32)), ("int64", "float32"), VOCAB, "hf",
                "CLIPModel: dual encoder (text, causal mask; vision), similarity logits; its output nests each "
                "tower's own ModelOutput"),
]
