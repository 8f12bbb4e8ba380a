"""The model zoo: real architectures with random weights (fixed seed), each built by a function that takes no
arguments, so the CLI can use them directly: `python -m converter convert scripts/zoo_models.py:resnet18 ...`.

`ZOO` lists every entry with the inputs it is converted with (scripts/zoo.py runs them). Images are
standard-normal, the scale of ImageNet-normalised pixels; token inputs are integers in [0, int_high).
Large models use a smaller image than they were trained on where the architecture allows it: `note` says so.

Random weights must still give an output that depends on the input, or parity cannot fail whatever the artifact
computes (converter/parity.py, "degenerate"). The convolutional builders are brought to life on a seeded random
batch (`_alive`), and their notes say so; the transformers need nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

SEED = 0


@dataclass(frozen=True)
class Entry:
    name: str  # the builder's name in this module
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...] = ("float32",)
    int_high: int = 2
    family: str = "classification"
    note: str = ""  # smaller input, adapter, ...
    timeout_s: int = 1500
    tolerances: tuple[str, ...] = field(default=())  # extra --tolerance PRECISION=REL, with the reason in note

    @property
    def model(self) -> str:
        return f"scripts/zoo_models.py:{self.name}"


def _image(size: int) -> tuple[tuple[int, ...], ...]:
    return ((1, 3, size, size),)


def _no_zero_weights(model: nn.Module) -> nn.Module:
    """torchvision zero-initialises a few weights (ViT's head and class token). A model whose output is all
    zeros would pass every parity check whatever the artifact computes: give them small random values."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0.0, 0.02)
    return model


def _torchvision(name: str, **kwargs):
    import torchvision

    torch.manual_seed(SEED)
    return _no_zero_weights(getattr(torchvision.models, name)(weights=None, **kwargs))


# Fresh BatchNorm layers hold mean 0 and variance 1, so in eval mode they normalise nothing, and the activations of
# a random CNN die or blow up layer by layer: googlenet's N(0, 0.01) convolutions leave only the classifier's bias
# (relative spread of the output over two inputs 1.8e-12), mobilenet's depthwise convolutions shrink it to 1e-9,
# inception_v3's grow it to 1e11; and global pooling of what is left averages the input away. Statistics measured
# on a random batch are what training would leave there, and exercise the converters' BatchNorm folding too.
#
# Measured exactly, though, they make a random deep CNN chaotic: it amplifies any small change of its weights, so
# that rounding them to fp16 (in PyTorch alone, no converter involved) moves resnet50's output by 2.4% of its
# scale and fcn_resnet50's by 14%, beyond the fp16 tolerance (1e-2), where no trained network goes. Taking the
# variances a little wider than measured (x DAMPING^2) calms that while the output still follows the input. Each
# value is the one of 1, 1.03, 1.05, 1.08, 1.1, 1.15 with the widest margin on both sides, over the zoo's own two
# inputs (PyTorch only): relative spread / (10 x 1e-2), and 1e-2 / fp16-rounding error. Margins: 1.5 (regnet_x)
# to 7.8 (lraspp); the builders not named here have theirs at 1.
DAMPING = {
    "resnet50": 1.08, "resnext50_32x4d": 1.08, "wide_resnet50_2": 1.08, "mobilenet_v2": 1.05, "regnet_y_400mf": 1.05,
    "regnet_x_400mf": 1.05, "densenet121": 1.03, "googlenet": 1.05, "inception_v3": 1.15, "mnasnet0_5": 1.03,
    "shufflenet_v2_x0_5": 1.03, "lraspp_mobilenet_v3_large": 1.08, "deeplabv3_mobilenet_v3_large": 1.03,
    "fcn_resnet50": 1.15, "ssdlite320_mobilenet_v3_large": 1.15,
}
# Without BatchNorm, the same with each conv and linear layer: scaled to a unit-variance output with half of its
# mean removed (all of it is as chaotic: squeezenet's fp16-rounding error 1.2%; none leaves the input averaged
# away: relative spread 0.05).
CENTRE = 0.5


def _live_note(name: str, *more: str) -> str:
    """The zoo table's note for a builder brought to life by `_alive`, then `more`."""
    damping = DAMPING.get(name, 1.0)
    live = "BatchNorm statistics from a seeded random batch" + (f" (variances x{damping:g}^2)" if damping != 1 else "")
    return "; ".join((live, *more))


LIVE_LAYERS = f"each conv/linear layer scaled to unit variance with {CENTRE:.0%} of its mean removed, on a seeded " \
              "random batch"


def _alive(model: nn.Module, name: str, layers: list[nn.Module] | None = None, centre: float = CENTRE) -> nn.Module:
    """`model` in eval mode, with BatchNorm statistics measured on a seeded standard-normal batch of the zoo entry's
    input shape (variances x DAMPING^2); then each of `layers` (without BatchNorm: every conv and linear layer)
    scaled to a unit-variance output with `centre` of its mean removed, on the same batch."""
    shape = next(e.shapes[0] for e in ZOO if e.name == name)
    batch = torch.randn((8, *shape[1:]), generator=torch.Generator().manual_seed(SEED))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if layers is None and not norms:
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        if norms:
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None  # one batch: its statistics exactly
                norm.train()  # only the norms: dropout and stochastic depth stay off
            model(batch)
            model.eval()
            for norm in norms:
                norm.running_var.mul_(DAMPING.get(name, 1.0) ** 2)
        # A second pass, after the norms are final: each layer is measured on what it will see.
        hooks = [layer.register_forward_hook(_unit_output(centre)) for layer in layers or []]
        try:
            if hooks:
                model(batch)
        finally:
            for hook in hooks:
                hook.remove()
    return model


def _unit_output(centre: float):
    """A forward hook that rescales its layer to a unit-variance output per channel with `centre` of the mean
    removed, and passes that output on, so that the next layer is measured on what it will see."""

    def hook(layer: nn.Module, args, out: torch.Tensor) -> torch.Tensor:
        channel = 1 if isinstance(layer, nn.Conv2d) else out.dim() - 1
        dims = [d for d in range(out.dim()) if d != channel]
        mean = out.mean(dims) * centre if layer.bias is not None else torch.zeros(out.shape[channel])
        std = out.std(dims).clamp(min=1e-12)
        layer.weight.div_(std.view(-1, *[1] * (layer.weight.dim() - 1)))
        if layer.bias is not None:
            layer.bias.copy_((layer.bias - mean) / std)
        per_channel = (-1, *[1] * (out.dim() - channel - 1))
        return (out - mean.view(per_channel)) / std.view(per_channel)

    return hook


def _cnn(name: str, **kwargs) -> nn.Module:
    return _alive(_torchvision(name, **kwargs), name)


# --- classification -------------------------------------------------------------------------------------

def resnet18(): return _cnn("resnet18")
def resnet50(): return _cnn("resnet50")
def resnext50_32x4d(): return _cnn("resnext50_32x4d")
def wide_resnet50_2(): return _cnn("wide_resnet50_2")
def mobilenet_v2(): return _cnn("mobilenet_v2")
def mobilenet_v3_small(): return _cnn("mobilenet_v3_small")
def mobilenet_v3_large(): return _cnn("mobilenet_v3_large")
def efficientnet_b0(): return _cnn("efficientnet_b0")
def efficientnet_v2_s(): return _cnn("efficientnet_v2_s")
def regnet_y_400mf(): return _cnn("regnet_y_400mf")
def regnet_x_400mf(): return _cnn("regnet_x_400mf")
def convnext_tiny(): return _torchvision("convnext_tiny")
def densenet121(): return _cnn("densenet121")
def googlenet(): return _cnn("googlenet", aux_logits=False, init_weights=True)
def inception_v3(): return _cnn("inception_v3", aux_logits=False, init_weights=True)
def mnasnet0_5(): return _cnn("mnasnet0_5")
def shufflenet_v2_x0_5(): return _cnn("shufflenet_v2_x0_5")
def squeezenet1_1(): return _cnn("squeezenet1_1")
def alexnet(): return _cnn("alexnet")
def vgg11(): return _cnn("vgg11")
def vit_b_16(): return _torchvision("vit_b_16", image_size=112)
def swin_t(): return _torchvision("swin_t")
def swin_v2_t(): return _torchvision("swin_v2_t")
def maxvit_t(): return _torchvision("maxvit_t")


# --- detection and segmentation -------------------------------------------------------------------------

class SsdliteHeads(nn.Module):
    """ssdlite320_mobilenet_v3_large as tensors in, tensors out.

    torchvision's detectors take a list of images and return a list of dicts after a data-dependent
    post-processing (score threshold, top-k, NMS) that has no fixed output shape. This adapter takes a
    normalised (N, 3, 320, 320) batch and returns every anchor's decoded boxes (N, A, 4, as x1 y1 x2 y2 in
    pixels) and class probabilities (N, A, C): everything up to NMS, which the app runs on the outputs.
    """

    def __init__(self) -> None:
        super().__init__()
        import torchvision
        from torchvision.models.detection.image_list import ImageList

        torch.manual_seed(SEED)
        model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
        self.backbone, self.head, self.box_coder = model.backbone, model.head, model.box_coder
        # The anchors depend only on the image and feature-map sizes: compute them once, keep them constant.
        with torch.no_grad():
            image = torch.zeros(1, 3, 320, 320)
            features = list(self.backbone(image).values())
            anchors = model.anchor_generator(ImageList(image, [(320, 320)]), features)[0]
        self.register_buffer("anchors", anchors)

    def forward(self, images: torch.Tensor):
        features = list(self.backbone(images).values())
        head = self.head(features)
        n = images.shape[0]
        boxes = self.box_coder.decode_single(head["bbox_regression"].reshape(-1, 4), self.anchors.repeat(n, 1))
        return boxes.reshape(n, -1, 4), torch.softmax(head["cls_logits"], dim=-1)


def ssdlite320_mobilenet_v3_large():
    # torchvision initialises the heads' last 1x1 convolutions N(0, 0.03) with zero bias; behind fresh BatchNorm
    # the features they see are ~0, so every logit was 0 (scores a uniform 1/91) and every box offset 0 (boxes
    # exactly the anchors). Live statistics, and those convolutions scaled to unit-variance logits and offsets
    # (not centred: removing their mean made the scores chaotic, fp16-rounding error 4%).
    model = SsdliteHeads()
    heads = (model.head.classification_head.module_list, model.head.regression_head.module_list)
    return _alive(model, "ssdlite320_mobilenet_v3_large", [block[-1] for head in heads for block in head], centre=0.0)


def _segmentation(name: str):
    import torchvision

    torch.manual_seed(SEED)
    return _alive(_no_zero_weights(getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)),
                  name)


def lraspp_mobilenet_v3_large(): return _segmentation("lraspp_mobilenet_v3_large")
def deeplabv3_mobilenet_v3_large(): return _segmentation("deeplabv3_mobilenet_v3_large")
def fcn_resnet50(): return _segmentation("fcn_resnet50")


# --- transformer blocks from torch.nn -------------------------------------------------------------------

VOCAB = 1000
DIM = 64


class TextEncoder(nn.Module):
    """Token and position embeddings, a 2-layer pre-norm nn.TransformerEncoder (GELU) with a key padding mask
    computed from the tokens (id 0 is padding), LayerNorm, mean pooling over the real tokens, a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.positions = nn.Embedding(64, DIM)
        layer = nn.TransformerEncoderLayer(DIM, 4, 4 * DIM, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        # No nested tensors: their fast path zeroes padded positions, which no exported graph does.
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(DIM), enable_nested_tensor=False)
        self.classifier = nn.Linear(DIM, 10)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        padding = ids == 0
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.encoder(self.tokens(ids) + self.positions(positions), src_key_padding_mask=padding)
        keep = (~padding).unsqueeze(-1).to(h.dtype)
        return self.classifier((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))


class TextDecoder(nn.Module):
    """A 2-layer nn.TransformerDecoder: embedded target tokens with a causal mask, cross-attention to a
    float memory (an encoder's output), LayerNorm, and a next-token head."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM)
        self.positions = nn.Embedding(64, DIM)
        layer = nn.TransformerDecoderLayer(DIM, 4, 4 * DIM, dropout=0.0, activation="gelu", batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(DIM))
        self.head = nn.Linear(DIM, VOCAB)

    def forward(self, ids: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=ids.device), diagonal=1)
        x = self.tokens(ids) + self.positions(torch.arange(length, device=ids.device))
        return self.head(self.decoder(x, memory, tgt_mask=causal, tgt_is_causal=True))


class Seq2Seq(nn.Module):
    """nn.Transformer (2 encoder and 2 decoder layers) over token inputs: source padding mask, causal
    target mask, shared embeddings, tied output head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, DIM, padding_idx=0)
        self.positions = nn.Embedding(64, DIM)
        self.transformer = nn.Transformer(DIM, 4, 2, 2, 4 * DIM, dropout=0.0, activation="gelu", batch_first=True)
        # No nested tensors (see TextEncoder).
        self.transformer.encoder.enable_nested_tensor = self.transformer.encoder.use_nested_tensor = False

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        length = tgt.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(length, device=tgt.device)
        s = self.embed(src) + self.positions(torch.arange(src.shape[1], device=src.device))
        t = self.embed(tgt) + self.positions(torch.arange(length, device=tgt.device))
        h = self.transformer(s, t, tgt_mask=causal, src_key_padding_mask=src == 0, memory_key_padding_mask=src == 0)
        return h @ self.embed.weight.t()


class GptBlock(nn.Module):
    """A decoder-only language model: nn.MultiheadAttention with a boolean causal mask, pre-norm LayerNorm,
    tanh-approximated GELU (GPT-2's), residuals, a tied head."""

    def __init__(self, layers: int = 2) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, DIM)
        self.positions = nn.Parameter(torch.randn(1, 64, DIM) * 0.02)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(DIM), "attn": nn.MultiheadAttention(DIM, 4, batch_first=True),
            "ln2": nn.LayerNorm(DIM),
            "mlp": nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(approximate="tanh"), nn.Linear(4 * DIM, DIM)),
        }) for _ in range(layers))
        self.ln = nn.LayerNorm(DIM)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=ids.device), diagonal=1)
        x = self.tokens(ids) + self.positions[:, :length]
        for b in self.blocks:
            h = b["ln1"](x)
            x = x + b["attn"](h, h, h, attn_mask=causal, need_weights=False)[0]
            x = x + b["mlp"](b["ln2"](x))
        return self.ln(x) @ self.tokens.weight.t()


def _seeded(cls):
    def build():
        torch.manual_seed(SEED)
        return cls().eval()

    build.__name__ = cls.__name__
    return build


text_encoder = _seeded(TextEncoder)
text_decoder = _seeded(TextDecoder)
seq2seq_transformer = _seeded(Seq2Seq)
gpt_block = _seeded(GptBlock)


SMALLER = "smaller input than trained on ({}), to keep time and memory down"

ZOO: list[Entry] = [
    Entry("resnet18", _image(224), note=_live_note("resnet18")),
    Entry("resnet50", _image(224), note=_live_note("resnet50")),
    Entry("resnext50_32x4d", _image(160), note=_live_note("resnext50_32x4d", SMALLER.format("160x160"))),
    Entry("wide_resnet50_2", _image(128), note=_live_note("wide_resnet50_2", SMALLER.format("128x128"))),
    Entry("mobilenet_v2", _image(224), note=_live_note("mobilenet_v2")),
    Entry("mobilenet_v3_small", _image(224), note=_live_note("mobilenet_v3_small")),
    Entry("mobilenet_v3_large", _image(224), note=_live_note("mobilenet_v3_large")),
    Entry("efficientnet_b0", _image(224), note=_live_note("efficientnet_b0")),
    Entry("efficientnet_v2_s", _image(160), note=_live_note("efficientnet_v2_s", SMALLER.format("160x160"))),
    Entry("regnet_y_400mf", _image(224), note=_live_note("regnet_y_400mf")),
    Entry("regnet_x_400mf", _image(224), note=_live_note("regnet_x_400mf")),
    Entry("convnext_tiny", _image(160), note=SMALLER.format("160x160")),
    Entry("densenet121", _image(160), note=_live_note("densenet121", SMALLER.format("160x160"))),
    Entry("googlenet", _image(224), note="aux_logits=False; " + _live_note(
        "googlenet", "before, the output was the classifier's bias: relative spread 1.8e-12 over the two inputs")),
    Entry("inception_v3", _image(160),
          note="aux_logits=False; " + _live_note("inception_v3", SMALLER.format("160x160, 299 native"))),
    Entry("mnasnet0_5", _image(224), note=_live_note("mnasnet0_5")),
    Entry("shufflenet_v2_x0_5", _image(224), note=_live_note(
        "shufflenet_v2_x0_5", "before: relative spread 1.1e-4 over the two inputs, too little even for fp32")),
    Entry("squeezenet1_1", _image(224), note=LIVE_LAYERS),
    Entry("alexnet", _image(224), note=LIVE_LAYERS),
    Entry("vgg11", _image(128), note=f"{LIVE_LAYERS}; {SMALLER.format('128x128')}"),
    Entry("vit_b_16", _image(112), note="built with image_size=112 (49 patches, positional table to match); "
          "the zero-initialised head and class token get N(0, 0.02) so that the output is not all zeros"),
    Entry("swin_t", _image(224)),
    Entry("swin_v2_t", _image(224)),
    Entry("maxvit_t", _image(224), note="224x224 is the only size its built-in grid allows"),
    Entry("ssdlite320_mobilenet_v3_large", _image(320), family="detection",
          note="adapter: batch tensor in; decoded boxes and class probabilities for every anchor out (no NMS); "
          + _live_note("ssdlite320_mobilenet_v3_large", "the heads' last convolutions scaled to unit-variance "
                       "logits and box offsets; before, the scores were a uniform 1/91 and the boxes exactly the "
                       "anchors (relative spread 0)", "the anchors are input-independent by definition: the boxes "
                       "vary only through the offsets")),
    Entry("lraspp_mobilenet_v3_large", _image(224), family="segmentation", note=_live_note("lraspp_mobilenet_v3_large")),
    Entry("deeplabv3_mobilenet_v3_large", _image(224), family="segmentation", note=_live_note(
        "deeplabv3_mobilenet_v3_large", "before, the output was the last layer's bias: relative spread 7.5e-9")),
    Entry("fcn_resnet50", _image(160), family="segmentation", note=_live_note("fcn_resnet50", SMALLER.format("160x160"))),
    Entry("text_encoder", ((1, 32),), ("int64",), VOCAB, "transformer",
          "nn.TransformerEncoder, padding mask from the tokens, int64 token ids"),
    Entry("text_decoder", ((1, 24), (1, 16, DIM)), ("int64", "float32"), VOCAB, "transformer",
          "nn.TransformerDecoder, causal mask, cross-attention to a float memory"),
    Entry("seq2seq_transformer", ((1, 20), (1, 16)), ("int64", "int64"), VOCAB, "transformer",
          "nn.Transformer, source padding mask and causal target mask, tied head"),
    Entry("gpt_block", ((1, 32),), ("int64",), VOCAB, "transformer",
          "nn.MultiheadAttention with a boolean causal mask, tanh GELU, tied head"),
]
