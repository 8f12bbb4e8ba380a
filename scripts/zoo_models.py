"""The model zoo: real architectures with random weights (fixed seed), each built by a function that takes no
arguments, so the CLI can use them directly: `python -m converter convert scripts/zoo_models.py:resnet18 ...`.

`ZOO` lists every entry with the inputs it is converted with (scripts/zoo.py runs them). Images are
standard-normal, the scale of ImageNet-normalised pixels; token inputs are integers in [0, int_high).
Large models use a smaller image than they were trained on where the architecture allows it: `note` says so.
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


# --- classification -------------------------------------------------------------------------------------

def resnet18(): return _torchvision("resnet18")
def resnet50(): return _torchvision("resnet50")
def resnext50_32x4d(): return _torchvision("resnext50_32x4d")
def wide_resnet50_2(): return _torchvision("wide_resnet50_2")
def mobilenet_v2(): return _torchvision("mobilenet_v2")
def mobilenet_v3_small(): return _torchvision("mobilenet_v3_small")
def mobilenet_v3_large(): return _torchvision("mobilenet_v3_large")
def efficientnet_b0(): return _torchvision("efficientnet_b0")
def efficientnet_v2_s(): return _torchvision("efficientnet_v2_s")
def regnet_y_400mf(): return _torchvision("regnet_y_400mf")
def regnet_x_400mf(): return _torchvision("regnet_x_400mf")
def convnext_tiny(): return _torchvision("convnext_tiny")
def densenet121(): return _torchvision("densenet121")
def googlenet(): return _torchvision("googlenet", aux_logits=False, init_weights=True)
def inception_v3(): return _torchvision("inception_v3", aux_logits=False, init_weights=True)
def mnasnet0_5(): return _torchvision("mnasnet0_5")
def shufflenet_v2_x0_5(): return _torchvision("shufflenet_v2_x0_5")
def squeezenet1_1(): return _torchvision("squeezenet1_1")
def alexnet(): return _torchvision("alexnet")
def vgg11(): return _torchvision("vgg11")
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


def ssdlite320_mobilenet_v3_large(): return SsdliteHeads().eval()


def _segmentation(name: str):
    import torchvision

    torch.manual_seed(SEED)
    return _no_zero_weights(getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None))


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
    Entry("resnet18", _image(224)),
    Entry("resnet50", _image(224)),
    Entry("resnext50_32x4d", _image(160), note=SMALLER.format("160x160")),
    Entry("wide_resnet50_2", _image(128), note=SMALLER.format("128x128")),
    Entry("mobilenet_v2", _image(224)),
    Entry("mobilenet_v3_small", _image(224)),
    Entry("mobilenet_v3_large", _image(224)),
    Entry("efficientnet_b0", _image(224)),
    Entry("efficientnet_v2_s", _image(160), note=SMALLER.format("160x160")),
    Entry("regnet_y_400mf", _image(224)),
    Entry("regnet_x_400mf", _image(224)),
    Entry("convnext_tiny", _image(160), note=SMALLER.format("160x160")),
    Entry("densenet121", _image(160), note=SMALLER.format("160x160")),
    Entry("googlenet", _image(224), note="aux_logits=False"),
    Entry("inception_v3", _image(160), note="aux_logits=False; " + SMALLER.format("160x160, 299 native")),
    Entry("mnasnet0_5", _image(224)),
    Entry("shufflenet_v2_x0_5", _image(224)),
    Entry("squeezenet1_1", _image(224)),
    Entry("alexnet", _image(224)),
    Entry("vgg11", _image(128), note=SMALLER.format("128x128")),
    Entry("vit_b_16", _image(112), note="built with image_size=112 (49 patches, positional table to match); "
          "the zero-initialised head and class token get N(0, 0.02) so that the output is not all zeros"),
    Entry("swin_t", _image(224)),
    Entry("swin_v2_t", _image(224)),
    Entry("maxvit_t", _image(224), note="224x224 is the only size its built-in grid allows"),
    Entry("ssdlite320_mobilenet_v3_large", _image(320), family="detection",
          note="adapter: batch tensor in; decoded boxes and class probabilities for every anchor out (no NMS)"),
    Entry("lraspp_mobilenet_v3_large", _image(224), family="segmentation"),
    Entry("deeplabv3_mobilenet_v3_large", _image(224), family="segmentation"),
    Entry("fcn_resnet50", _image(160), family="segmentation", note=SMALLER.format("160x160")),
    Entry("text_encoder", ((1, 32),), ("int64",), VOCAB, "transformer",
          "nn.TransformerEncoder, padding mask from the tokens, int64 token ids"),
    Entry("text_decoder", ((1, 24), (1, 16, DIM)), ("int64", "float32"), VOCAB, "transformer",
          "nn.TransformerDecoder, causal mask, cross-attention to a float memory"),
    Entry("seq2seq_transformer", ((1, 20), (1, 16)), ("int64", "int64"), VOCAB, "transformer",
          "nn.Transformer, source padding mask and causal target mask, tied head"),
    Entry("gpt_block", ((1, 32),), ("int64",), VOCAB, "transformer",
          "nn.MultiheadAttention with a boolean causal mask, tanh GELU, tied head"),
]
