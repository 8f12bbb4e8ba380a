"""Small real architectures for end-to-end tests, each built with a fixed seed. Used as MODEL arguments:
`tests/models/small.py:mlp_layernorm_gelu`."""

from __future__ import annotations

import math

import torch
from torch import nn


class MlpLayerNormGelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 16), nn.GELU(),
                                 nn.Linear(16, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AttentionBlock(nn.Module):
    """A pre-norm transformer encoder block: multi-head self-attention and a GELU feed-forward."""

    def __init__(self, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ff(self.norm2(x))


class TwoInputs(nn.Module):
    """An image and a feature vector, two outputs: checks input order, names and layouts."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(6, 4)

    def forward(self, image: torch.Tensor, features: torch.Tensor):
        fmap = torch.relu(self.conv(image))
        return fmap, fmap.mean(dim=(2, 3)) + self.fc(features)


class ResidualCnn(nn.Module):
    """Two residual conv blocks: the additions must stay channels-last in the TF graph (no Transposes)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6()) for _ in range(2))
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x.mean(dim=(2, 3)))


class ConvBnHardswish(nn.Module):
    """Conv -> BatchNorm -> Hardswish: oneDNN builds fuse the hard-swish into the conv, which TF.js lacks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Hardswish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class TwoInputTanh(nn.Module):
    """Linear -> tanh on two inputs: oneDNN builds fuse the tanh into the matmul."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(16, 8), nn.Linear(16, 8)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.a(x)) + torch.tanh(self.b(y))


class L2Normalized(nn.Module):
    """An L2-normalised embedding (ONNX ReduceL2 over the last axis of a rank-3 tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.proj(x), dim=-1)


class BiasOnly(nn.Module):
    """A linear layer with weights so small that its output is its bias whatever the input: the zoo's degenerate
    initialisations in miniature. Any artifact that returns the bias matches PyTorch on any input."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)
        with torch.no_grad():
            self.fc.weight.mul_(1e-9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class OffsetScores(nn.Module):
    """Scores on a large offset, as a random-weight classifier's logits sit on their bias: the output varies by
    0.032 of its scale over the two default inputs, under 10 x fp16's 1e-2, so the fp16 check could not fail at
    1e-2; fp16 weights move it by 2.7e-4, and at twice that it can (converter/graph.py:_verify_at_floor)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)
        with torch.no_grad():
            self.fc.weight.mul_(0.5)
            self.fc.bias.fill_(10.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Resizes(nn.Module):
    """The resizes whose TF form computes other numbers: nearest to a non-multiple size and downwards,
    bicubic, bilinear with align_corners=True or antialiasing (and a nearest 2x upscale, which TF gets right,
    beside them)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor):
        y = self.conv(x)
        odd = nn.functional.interpolate(y, size=(7, 7), mode="nearest")
        down = nn.functional.interpolate(y, scale_factor=0.5, mode="nearest")
        cubic = nn.functional.interpolate(y, size=(9, 5), mode="bicubic")
        double = nn.functional.interpolate(y, scale_factor=2, mode="nearest")
        corners = nn.functional.interpolate(y, size=(7, 6), mode="bilinear", align_corners=True)
        smooth = nn.functional.interpolate(y, size=(3, 2), mode="bilinear", antialias=True)
        pooled = sum(t.mean(dim=(2, 3)) for t in (odd, down, cubic, double, corners, smooth))
        return pooled, odd, cubic, corners, smooth


class NestedOutputs(nn.Module):
    """Outputs nested as Hugging Face's CLIPOutput nests them: a dict holding a dict and a tuple with a None."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 4), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor):
        return {"scores": self.a(x), "inner": {"features": self.b(x), "pair": (self.a(x).tanh(), None)}}


class InnerBroadcastMatmul(nn.Module):
    """A batched matmul that broadcasts over an inner batch axis, as timm's efficientvit attention does
    ([24, 32, 1, 49] @ [24, 1, 49, 33]): [2, 3, 1, 5] @ [2, 1, 5, 4], or mirrored, [2, 1, 4, 5] @ [2, 3, 5, 1],
    from an input [2, 3, 5]. TF.js's BatchMatMul kernels broadcast only over leading batch axes."""

    def __init__(self, mirrored: bool = False) -> None:
        super().__init__()
        self.q, self.k, self.mirrored = nn.Linear(5, 5), nn.Linear(3, 4), mirrored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.q(x).unsqueeze(2)  # [2, 3, 1, 5]
        b = self.k(x.transpose(1, 2)).unsqueeze(1)  # [2, 1, 5, 4]
        if self.mirrored:
            return b.transpose(2, 3) @ a.transpose(2, 3)  # [2, 1, 4, 5] @ [2, 3, 5, 1] -> [2, 3, 4, 1]
        return a @ b  # [2, 3, 1, 4]


class WideGroupNorm(nn.Module):
    """GroupNorm with one group over 32 x 128 x 128 activations that sit on an offset, as mobilevitv2 normalises:
    one mean over 524,288 elements. TFLite's and TF.js wasm's kernels sum them into one float32, one after the
    other (rel 1.2e-4 at the output before converter/stages/onnx2tf_fixes.py:blocked_reductions)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.norm, self.b = nn.Conv2d(3, 32, 3, padding=1), nn.GroupNorm(1, 32), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(nn.functional.silu(self.norm(self.a(x) + 3.0)))


class EqualDims(nn.Module):
    """8 channels on an 8x8 map, so that shapes cannot tell NCHW from NHWC: a channels-last block between two
    permutes, then an average pool, as timm's MaxViT stages do (maxvit_rmlp_nano_rw_256 at 64x64x64 was off by
    1.43 before converter/stages/onnx2tf_fixes.py:equal_dims_channels_last). Unpooled, it returns the map."""

    def __init__(self, pooled: bool = True) -> None:
        super().__init__()
        self.pooled = pooled
        self.conv, self.norm, self.mlp = nn.Conv2d(3, 8, 3, padding=1), nn.LayerNorm(8), nn.Linear(8, 8)
        self.head = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).permute(0, 2, 3, 1)
        x = (x + self.mlp(self.norm(x))).permute(0, 3, 1, 2)
        return self.head(nn.functional.avg_pool2d(x, 2).flatten(1)) if self.pooled else x


class Fp16Range(nn.Module):
    """Constants that float16 cannot hold, where transformers hold them: F.normalize's eps (1e-12) over rows that
    padding left zero, as swin_v2's keys in a padded window, and a -1e9 mask fill for those rows. Stored as
    float16 (TFLite fp16, TF.js --quantize fp16) the eps is 0 and the fill -inf: 0 / 0 and 0 x -inf, NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k = nn.Linear(16, 16), nn.Linear(16, 16, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = lambda t: nn.functional.pad(t, (0, 0, 0, 2))  # noqa: E731
        q = nn.functional.normalize(pad(self.q(x)), dim=-1)
        k = nn.functional.normalize(pad(self.k(x)), dim=-1)
        keep = nn.functional.pad((x[..., 0] > -1e3).float(), (0, 2))  # 1 for x's rows, 0 for the padding
        scores = 10 * q @ k.transpose(1, 2) + (1 - keep[:, None, :]) * -1e9
        return scores.softmax(-1) @ k


class CondConv(nn.Module):
    """Convolutions whose weights are computed from the input, as timm's CondConv2d (tf_efficientnet_cc_*): a
    routing softmax mixes 4 expert kernels per sample, so the ONNX Conv reads a MatMul -> Reshape, not an
    initializer. A 3x3 on the 3-channel input (a weight of 8x3x3x3, whose shape cannot tell its layout), a
    depthwise 3x3, a 1x1 and a stride-2 transposed convolution. onnx2tf transposes only constant weights to TF's
    layout: TF's Conv2D got the ONNX one before converter/stages/onnx2tf_fixes.py:computed_conv_weights."""

    def __init__(self) -> None:
        super().__init__()
        self.route = nn.Linear(3, 4)
        self.shapes = [((8, 3, 3, 3), 1), ((8, 1, 3, 3), 8), ((6, 8, 1, 1), 1), ((6, 4, 2, 2), 1)]
        self.experts = nn.ParameterList(
            nn.Parameter(torch.randn(4, math.prod(shape)) * (math.prod(shape[1:]) * groups) ** -0.5)
            for shape, groups in self.shapes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        routing = self.route(x.mean((2, 3))).softmax(-1)  # [1, 4]: batch 1, as the weights are per sample
        for i, (experts, (shape, groups)) in enumerate(zip(self.experts, self.shapes)):
            weight = (routing @ experts).view(shape)
            if i == 3:
                return nn.functional.conv_transpose2d(x, weight, stride=2)
            x = nn.functional.relu(nn.functional.conv2d(x, weight, padding=shape[-1] // 2, groups=groups))


class BidirectionalGru(nn.Module):
    """A bidirectional GRU over a sequence, mean-pooled: TensorFlow runs each direction as a while loop, and
    Grappler gives the AddNs it builds in the loop body a control input, which TF.js read as an operand before
    converter/stages/tfjs_audit.py dropped such control inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(16, 24, batch_first=True, bidirectional=True), nn.Linear(48, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(x)[0].mean(1))


class PositionalMap(nn.Module):
    """A learned [1, C, H, W] position map added to a convolution's output, converted at batch 2 (timm's
    tnt_s_patch16_224 adds its pixel positions to 196 patches at once): onnx2tf transposed the constant a
    second time before converter/stages/onnx2tf_fixes.py:constant_layouts_kept ([2, 4, 4, 8] + [1, 4, 8, 4])."""

    def __init__(self) -> None:
        super().__init__()
        self.proj, self.pos = nn.Conv2d(3, 8, 3, padding=1, stride=2), nn.Parameter(torch.randn(1, 8, 4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x) + self.pos


class RelativePositions(nn.Module):
    """mvitv2's decomposed relative positions: per head, each query against a table of height and of width
    offsets, `byhwc,hkc->byhwk` (h a batch axis of both operands, not a leading one). TF.js's wasm backend has
    no Einsum kernel, and converter/stages/onnx_rewrites.py:einsum_as_matmul took only leading batch axes."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(10, 10)
        self.rel_h, self.rel_w = nn.Parameter(torch.randn(4, 6, 5)), nn.Parameter(torch.randn(3, 7, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 12 = 4 x 3 positions, 10 = 2 heads x 5]
        q = self.q(x).view(1, 4, 3, 2, 5).permute(0, 3, 1, 2, 4)  # b, y (head), h, w, c
        by_h = torch.einsum("byhwc,hkc->byhwk", q, self.rel_h)
        by_w = torch.einsum("byhwc,wkc->byhwk", q, self.rel_w)
        return torch.cat([by_h.flatten(2), by_w.flatten(2)], -1)


class BlockAttention(nn.Module):
    """F.scaled_dot_product_attention on rank 5 (batch, heads, blocks, tokens, channels: timm's NesT) and on
    rank 3 with a causal mask (one head), which torch.onnx's translation did not take (only rank 4) before
    converter/stages/onnx.py:_attention_in_4d."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3 blocks, 5 tokens, 8]
        heads = lambda t: t.view(1, 3, 5, 2, 4).permute(0, 3, 1, 2, 4)  # noqa: E731 [1, 2 heads, 3, 5, 4]
        blocks = nn.functional.scaled_dot_product_attention(heads(self.q(x)), heads(self.k(x)), heads(self.v(x)))
        flat = x.flatten(0, 1).view(3, 5, 8)
        causal = torch.ones(5, 5, dtype=torch.bool).tril()
        one_head = nn.functional.scaled_dot_product_attention(self.q(flat), self.k(flat), self.v(flat), causal)
        return blocks.permute(0, 2, 3, 1, 4).reshape(1, 3, 5, 8) + one_head[None]


class CumulativeSum(nn.Module):
    """A temporal convolution block (dilated depthwise, pointwise, InstanceNorm) and a running sum over time:
    onnx2tf held the [1, 6, 20] map channels-last and summed along ONNX's axis -1, the channels there (rel 1.13),
    before converter/stages/onnx2tf_fixes.py:cumulative_axes."""

    def __init__(self) -> None:
        super().__init__()
        self.depthwise, self.pointwise = nn.Conv1d(4, 4, 3, dilation=2, padding=2, groups=4), nn.Conv1d(4, 6, 1)
        self.norm = nn.InstanceNorm1d(6, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(self.norm(self.pointwise(torch.relu(self.depthwise(x)))), dim=-1)


class SplitHeads(nn.Module):
    """Queries, keys and values split from one 6-axis tensor as timm's NesT does (reshape, permute, unbind), and
    the same tensor indexed, gathered and split along other axes: TFLite has no StridedSlice over 6 axes, and
    onnx2tf sliced the wrong axis (rel 1.24), before converter/stages/onnx_rewrites.py:slices_in_5d."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3 blocks, 5 tokens, 8]
        t = self.qkv(x).reshape(1, 3, 5, 3, 2, 4).permute(3, 0, 4, 1, 2, 5)  # [3, 1, 2 heads, 3, 5, 4]
        q, k, v = t.unbind(0)
        first, rest = t.split([1, 2], dim=0)
        picked = t.index_select(2, torch.tensor([1, 0])) * t[:, :, :, 1:2]
        mixed = q.softmax(-1) * k + v + rest.sum(0) * first[0] + picked.mean(0)
        return mixed.permute(0, 2, 3, 1, 4).reshape(1, 3, 5, 8)


class SquareTokens(nn.Module):
    """A ViT stem as timm's vit_wee_patch16_reg1_gap_256 has it, at 16 tokens of 16 channels: patches, position
    embedding, a register token in front, the average of the tokens. With as many tokens as channels onnx2tf
    concatenated the token along the channels (rel 0.57) before converter/stages/onnx2tf_fixes.py:constant_concats."""

    def __init__(self) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, 16, 4, stride=4)
        self.positions = nn.Parameter(torch.randn(1, 16, 16))
        self.register = nn.Parameter(torch.randn(1, 1, 16))
        self.norm = nn.LayerNorm(16)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3, 16, 16]
        tokens = self.patches(x).flatten(2).transpose(1, 2) + self.positions
        tokens = torch.cat([self.register.expand(x.shape[0], -1, -1), tokens], dim=1)
        return self.head(self.norm(tokens).mean(1))


class Flipped(nn.Module):
    """Test-time augmentation by flipping: the average of a net on the image and on its mirror image, mirrored back,
    and a map flipped on both axes. torch.flip exports as a Slice with step -1, which onnx2tf built as the identity
    (rel 0.88) before converter/stages/onnx_rewrites.py:reversed_slices."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, padding_mode="reflect"), nn.ReLU(), nn.Conv2d(6, 4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3, 10, 12]
        mirrored = (self.net(x) + self.net(x.flip(3)).flip(3)) / 2
        return mirrored + self.net(x).flip((2, 3))


class AffineWarp(nn.Module):
    """A spatial transformer: a small net predicts an affine transform near the identity, F.affine_grid and
    F.grid_sample warp the image with it. onnx2tf failed on affine_grid's product of its constant base grid with
    the thetas ("Dimensions must be equal") before converter/stages/onnx2tf_fixes.py:onnx_layout_broadcasts."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Linear(3 * 8 * 8, 6)
        self.register_buffer("identity", torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3, 8, 8]
        theta = self.theta(x.flatten(1)).view(-1, 2, 3) * 0.1 + self.identity
        grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        return nn.functional.grid_sample(x, grid, align_corners=False)


class PlaneNorm(nn.Module):
    """LayerNorms over several trailing axes: a whole feature map (channels, height, width) and a sequence's
    (features, time) plane. onnx2tf failed on such a LayerNormalization ("Eager execution of tf.constant with
    unsupported shape") before converter/stages/onnx_rewrites.py:layer_norms_over_one_axis."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.map_norm = nn.LayerNorm([6, 5, 7])
        self.plane_norm = nn.LayerNorm([6, 35])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3, 5, 7]
        y = self.map_norm(self.conv(x))
        return self.plane_norm(torch.relu(y).flatten(2)) * y.flatten(2)


class CircularConv(nn.Module):
    """Convolutions with circular padding (periodic domains: panoramas, climate grids), 2-D and 1-D: exported as
    Pad in wrap mode, which onnx2tf handed to tf.pad and failed, before
    converter/stages/onnx_rewrites.py:wrapped_pads."""

    def __init__(self) -> None:
        super().__init__()
        self.grid = nn.Conv2d(3, 4, 3, padding=(1, 2), dilation=(1, 2), padding_mode="circular")
        self.ring = nn.Conv1d(4, 4, 5, padding=2, padding_mode="circular")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 3, 6, 9]
        y = torch.relu(self.grid(x))
        return self.ring(y.mean(2))


class PrototypeDistances(nn.Module):
    """A prototype classifier: features max-pooled to a 3x3 grid from 10x10 (bins that do not divide it), and
    their distances to learned prototypes. torch.onnx could not translate either op (aten.adaptive_max_pool2d,
    aten._cdist_forward) before converter/stages/onnx.py:_translatable_forms, and onnx2tf then gave the [2, 5]
    distances as [5, 2], which converter/stages/saved_model.py:_transposes_by_data places."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.embed = nn.Linear(36, 8)
        self.prototypes = nn.Parameter(torch.randn(5, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [2, 3, 10, 10]
        pooled = nn.functional.adaptive_max_pool2d(torch.relu(self.conv(x)), (3, 3)).flatten(1)
        return -torch.cdist(self.embed(pooled), self.prototypes)


class VolumePools(nn.Module):
    """A small 3-D CNN (video clips, medical volumes): Conv3d, BatchNorm3d, 3-D max and average pooling, and a
    trilinear upscale. TFLite has no 3-D pooling kernel ("TFLite has no kernel for: MaxPool3D") before
    converter/stages/onnx_rewrites.py:pools_in_2d, and onnx2tf failed on the trilinear resize before
    resize_as_matmul took rank 5."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1)
        self.norm = nn.BatchNorm3d(4)
        self.head = nn.Linear(4 * 2 * 2 * 3, 3)
        with torch.no_grad():
            self.norm.running_mean.normal_()
            self.norm.running_var.uniform_(0.5, 2.0)

    def forward(self, x: torch.Tensor):  # x: [1, 2, 4, 8, 12]
        features = torch.relu(self.norm(self.conv(x)))
        y = nn.functional.max_pool3d(features, 2)
        upscaled = nn.functional.interpolate(features, size=(6, 10, 9), mode="trilinear")
        return self.head(nn.functional.avg_pool3d(y, (1, 2, 2)).flatten(1)), upscaled


class SquareGlu(nn.Module):
    """A SwiGLU feed-forward block (LLaMA's, gmixer's) on 16 tokens whose up-projection is 16 wide: the chunk
    into value and gate splits a [1, 16, 16] tensor along its last axis. onnx2tf flagged the bias Add's square
    output channels-last and split the tokens (rel 0.87) before
    converter/stages/onnx2tf_fixes.py:elementwise_layouts_kept."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(8, 16)
        self.down = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 16, 8]
        value, gate = self.up(x).chunk(2, dim=-1)
        return self.down(value * nn.functional.silu(gate))


class SquareBlock(nn.Module):
    """A ConvNeXt block written by hand (depthwise conv, permute to channels-last, LayerNorm, two Linears, permute
    back, residual) and a Linear along the width, on 8 channels of 8x8: every axis after the batch has one
    length. onnx2tf held the Linears' inputs channels-last and, strict mode running on a constant map, its MatMul
    took a transpose of the right product, height and width swapped (rel 0.21 and 0.33), before
    converter/stages/onnx2tf_fixes.py:onnx_side_data. The third output reads such a product's first row, which
    no later op of onnx2tf checks again: with data that varies, MatMul still took the transpose (rel 1.0) before
    matmuls_in_onnx_layout."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(8, 8, 7, padding=3, groups=8)
        self.norm = nn.LayerNorm(8)
        self.up = nn.Linear(8, 16)
        self.down = nn.Linear(16, 8)
        self.along_width = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # x: [1, 8, 8, 8]
        channels_last = self.dw(x).permute(0, 2, 3, 1)
        y = self.down(nn.functional.gelu(self.up(self.norm(channels_last)))).permute(0, 3, 1, 2)
        return x + y, self.along_width(self.dw(x)) + x, self.along_width(channels_last)[:, 0] * 2


class SelectiveKernel(nn.Module):
    """timm's skresnet downsampling unit: two strided convolutions, one dilated, stacked on a new axis ([1, 2, 6,
    8, 8]) and weighted by a softmax over that axis; and the same stack under a spatial gate held in ONNX's
    layout. TensorFlow refused the strided dilated convolution before
    converter/stages/onnx_rewrites.py:strided_dilations. onnx2tf holds the stack as [1, 8, 8, 6, 2], which its
    broadcasting rules cannot match with the weights when height and width are one length ("Dimensions must be
    equal": skresnet18 at 56x56) before converter/stages/onnx2tf_fixes.py:onnx_layout_broadcasts read the stack's
    layout; the gate varies over height and width, so only strict mode's data tells which of the two fitting
    layouts it is (the other: rel 0.64)."""

    def __init__(self) -> None:
        super().__init__()
        self.near = nn.Conv2d(6, 6, 3, stride=2, padding=1)
        self.far = nn.Conv2d(6, 6, 3, stride=2, padding=2, dilation=2)
        self.reduce = nn.Conv2d(6, 4, 1)
        self.select = nn.Conv2d(4, 12, 1)
        self.gate = nn.Conv2d(6, 2, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: [1, 6, 16, 16]
        paths = torch.stack([nn.functional.relu(self.near(x)), nn.functional.relu(self.far(x))], dim=1)
        weights = self.select(nn.functional.relu(self.reduce(paths.sum(1).mean((2, 3), keepdim=True))))
        weights = weights.view(1, 2, 6, 1, 1).softmax(dim=1)
        gate = torch.sigmoid(self.gate(x).reshape(1, 2, 1, 64).reshape(1, 2, 1, 8, 8))
        return (paths * weights).sum(1), (paths * gate).sum(1)


class EmbeddingBags(nn.Module):
    """nn.EmbeddingBag over bags of 5 ids: a mean that skips padding ids, a max, a weighted sum. torch.onnx writes
    it as a Loop over a sequence of bags that onnx2tf cannot convert ("no conversion for these ONNX ops:
    CastLike") before converter/stages/onnx.py:_translatable_forms."""

    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.EmbeddingBag(10, 8, mode="mean", padding_idx=0)
        self.max = nn.EmbeddingBag(10, 8, mode="max")
        self.sum = nn.EmbeddingBag(10, 8, mode="sum")

    def forward(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:  # ids: [2, 5] int64, weights: [2, 5]
        return torch.cat([self.mean(ids), self.max(ids), self.sum(ids, per_sample_weights=weights)], dim=1)


class AreaResize(nn.Module):
    """F.interpolate(mode="area") to a size that does not divide the input, and the adaptive average pool behind
    it: torch.onnx writes both as gathers of padded windows over rank-6 tensors, and onnx2tf got the first wrong
    (rel 1.3) before converter/stages/onnx.py:_translatable_forms wrote them as means over PyTorch's bins."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: [1, 3, 12, 11]
        return nn.functional.interpolate(x, size=(5, 5), mode="area"), nn.functional.adaptive_avg_pool2d(x, (5, 4))


class Dilations(nn.Module):
    """A dilated max pool and a dilated transposed convolution. onnx2tf built the pool with Dilation2D (no TFLite
    kernel; TF.js wasm rel 0.025) and TensorFlow's CPU kernel refused the transposed convolution, before
    converter/stages/onnx_rewrites.py:dilated_max_pools and dilated_transposed_convs."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 3, stride=2, dilation=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: [1, 3, 12, 11]
        return nn.functional.max_pool2d(x, 3, stride=1, padding=1, dilation=2), self.up(x)


class LinearDecoder(nn.Module):
    """A VAE's decoder (DCGAN's generator): Linear -> view as a 32-channel 4x4 map -> two transposed
    convolutions -> sigmoid. onnx2tf held the view in ONNX's layout and handed it to its transposed convolution
    as channels-last ("input depth must be evenly divisible by filter depth") before
    converter/stages/onnx2tf_fixes.py:transposed_conv_inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.project = nn.Linear(8, 32 * 4 * 4)
        self.up1 = nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: [2, 8]
        x = self.project(z).view(-1, 32, 4, 4)
        return torch.sigmoid(self.up2(nn.functional.relu(self.up1(x))))


class SquareLstm(nn.Module):
    """A bidirectional LSTM over a batch of as many sequences as steps ([8, 8, 16], batch first): before
    converter/stages/onnx2tf_fixes.py:leading_axis_transposes, onnx2tf matched the [batch, seq] -> [seq, batch]
    transpose by axis lengths, took it for the identity and ran the LSTM over the batch (rel 0.53; timm's
    sequencer2d_s, its LSTMs over the rows and columns of a square map, rel 0.5)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(16, 12, batch_first=True, bidirectional=True), nn.Linear(24, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0])


class SquareSteps(nn.Module):
    """A GRUCell run step by step over a sequence of as many steps as sequences and features ([6, 6, 6]), and one
    channel of a map of 8 channels on 8x8: onnx2tf flagged both inputs as held in ONNX's layout, since their
    transposed shapes look the same, and x[:, t] took features instead of steps (rel 1.24 and 1.71) before
    converter/stages/onnx2tf_fixes.py:transposed_inputs_flagged."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.GRUCell(6, 6), nn.Linear(8, 5)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, steps = torch.zeros(x.shape[0], 6), []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            steps.append(h)
        return torch.stack(steps, 1), self.head(image[:, 2])


class Ranking(nn.Module):
    """Scores ranked: top-k values, gathered back by their indices, a sorted prefix, and the argmax as a float.
    TF.js's cpu backend casts int32 to float32 without copying the data, and the Node.js runner wrote that
    Int32Array as float32 bytes: a false parity failure (max abs 9 on the argmax) until converter/js/run_tfjs.mjs
    converted it."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(10, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # x: [4, 10]
        s = self.score(x)
        values, indices = s.topk(3, dim=-1)
        return values + torch.gather(s, 1, indices), s.sort(dim=-1, descending=True)[0][:, :5], s.argmax(-1).float()


class ExpertRouting(nn.Module):
    """A mixture of experts routed by top-2 gates scattered into zeros: TF.js's cpu backend wrote the scatter into
    its constant zeros, so the second case started from the first's gates (rel 0.61) until
    converter/stages/tfjs_audit.py copied that input."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.experts = nn.Linear(16, 4), nn.ModuleList(nn.Linear(16, 16) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 6, 16]
        weights = self.gate(x).softmax(-1)
        top, index = weights.topk(2, -1)
        routed = torch.zeros_like(weights).scatter(-1, index, top)
        return sum(routed[..., i:i + 1] * expert(x) for i, expert in enumerate(self.experts))


class GatedScores(nn.Module):
    """Scores masked where they are low, soft-maxed, then kept where the mask holds and taken from the input
    elsewhere, as a running product, through an RReLU ([2, 8, 8]: as many steps as features). torch.onnx could not
    export torch.cumprod (prims.prod) or eval-mode RReLU (aten.rrelu_with_noise) before the export patches in
    converter/stages/onnx.py, and onnx2tf combined the input (held NWC) with the scores (held as ONNX's) without
    a transpose (rel 1.7) before converter/stages/onnx2tf_fixes.py:elementwise_layouts_kept aligned them."""

    def __init__(self) -> None:
        super().__init__()
        self.score, self.act = nn.Linear(8, 8), nn.RReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x)
        keep = s > 0.1
        s = s.masked_fill(~keep, -1e4).softmax(-1)
        return self.act(torch.where(keep, s, x.abs()).cumprod(-1) - 0.5)


class GramMatrix(nn.Module):
    """A Gram matrix of a Conv1d's features over as many positions as channels ([2, 16, 16]), y @ y^T, plus the
    input: onnx2tf flagged the transpose as NWC while holding it as ONNX's, and its MatMul picked the wrong product
    (rel 1.03) before converter/stages/onnx2tf_fixes.py:equal_dims_channels_last covered rank 3."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv1d(16, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.features(x)
        return y @ y.transpose(1, 2) / 16 + x


class Triangles(nn.Module):
    """Differences along the sequence, a matrix's strict lower triangle plus its transposed strict upper one, and
    the upper triangle of a map: onnx2tf builds tril/triu as band parts, and tfjs-converter reads a band part's
    upper bound from its lower bound's input, so TF.js kept the diagonal alone (rel 0.83) before
    converter/stages/tfjs_audit.py selected by the band; and onnx2tf's Trilu took the triangle of a channels-last
    map's (width, channels) (rel 0.74) before converter/stages/onnx2tf_fixes.py:triangles_in_onnx_layout."""

    def __init__(self) -> None:
        super().__init__()
        self.mix, self.conv = nn.Linear(8, 8), nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = self.mix(x)  # x: [1, 8, 8], image: [1, 3, 8, 6]
        return torch.diff(y, dim=1), y.tril(-1) + y.triu(1).transpose(1, 2), self.conv(image).tril(1)


class ChannelStats(nn.Module):
    """Statistics over the channels of a square map ([1, 4, 8, 8]): their variance, which the export computes as a
    mean without keepdims and a Reshape, and a one-hot mask of the largest channel. onnx2tf flagged the mean
    channels-last for its equal axes and the Reshape swapped rows and columns (rel 0.35) before
    converter/stages/onnx2tf_fixes.py:reductions_flagged, and, on any map, failed on the one-hot's comparison of the indices
    with arange(4) (the argmax was marked NHWC as its input was, and the Unsqueeze before the comparison put its new
    axis where a channels-last tensor's would go) until that fix cleared the mark too."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y + y.var(dim=1, keepdim=True), y * nn.functional.one_hot(y.argmax(1), 4).permute(0, 3, 1, 2)


class TrigFunctions(nn.Module):
    """Inverse and hyperbolic trigonometric functions, atan2 and fmod of a Linear's output ([2, 6] -> [2, 11, 6]).
    TFLite has no builtin for Acos, Acosh, Asin, Asinh, Atan, Atanh, Cosh, Sinh or Tan ("TFLite has no kernel for")
    before converter/stages/tflite.py:ELEMENTARY, and onnx2tf built fmod as a floor modulo (rel 1.23) before
    converter/stages/onnx_rewrites.py:truncated_mods."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.linear(x)) * 0.9
        return torch.stack([torch.atan(3 * y), torch.asin(y), torch.acos(y), torch.sinh(2 * y), torch.cosh(2 * y),
                            torch.tan(y), torch.asinh(4 * y), torch.acosh(2 + y), torch.atanh(y), torch.atan2(y, x),
                            torch.fmod(5 * x, 1.5)], 1)


class TokenSort(nn.Module):
    """The four tokens of a [2, 10, 6] sequence with the highest scores, in order, weighted by their scores:
    torch.gather with indices from an argsort. onnx2tf gathered the sequence (held NWC) with indices held as
    ONNX's along the wrong axis (rel 0.94) before converter/stages/onnx2tf_fixes.py:gathers_in_onnx_layout."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x).squeeze(-1)
        top = s.argsort(dim=1, descending=True)[:, :4]
        tokens = torch.gather(x, 1, top.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        return tokens * torch.gather(s, 1, top).unsqueeze(-1)


class Unpooling(nn.Module):
    """A SegNet-style encoder and decoder on a [1, 3, 12, 10] image: max pooling that keeps its indices, and
    max_unpool2d with them. onnx2tf built the indices with TensorFlow's MaxPoolWithArgmax, counted channels-last
    (rel 1.0 on the output), and TFLite had no kernel for it, before
    converter/stages/onnx_rewrites.py:pool_indices."""

    def __init__(self) -> None:
        super().__init__()
        self.encode, self.decode = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, where = nn.functional.max_pool2d(torch.relu(self.encode(x)), 2, return_indices=True)
        return self.decode(nn.functional.max_unpool2d(y * 2, where, 2))


class InputTriangle(nn.Module):
    """Attention over the last two axes of a [1, 4, 5, 4] input (einsums), plus the input's lower triangle: the
    input is held channels-last, [1, 5, 4, 4], which two layouts fit (channels and width have one length), and the
    Trilu's correction took the first of them, rows for channels (rel 0.60), before
    converter/stages/onnx2tf_fixes.py:_held_layout read a graph input's layout from the transpose onnx2tf gave it."""

    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("bhqd,bhkd->bhqk", self.query(x), x).softmax(-1)
        return torch.einsum("bhqk,bhkd->bhqd", scores, x) + x.tril()


def seeded(cls, *args):
    def build():
        torch.manual_seed(0)
        return cls(*args)

    return build


mlp_layernorm_gelu = seeded(MlpLayerNormGelu)
attention_block = seeded(AttentionBlock)
two_inputs = seeded(TwoInputs)
residual_cnn = seeded(ResidualCnn)
offset_scores = seeded(OffsetScores)
bias_only = seeded(BiasOnly)
conv_bn_hardswish = seeded(ConvBnHardswish)
two_input_tanh = seeded(TwoInputTanh)
l2_normalized = seeded(L2Normalized)
resizes = seeded(Resizes)
nested_outputs = seeded(NestedOutputs)
inner_broadcast_matmul = seeded(InnerBroadcastMatmul)
inner_broadcast_matmul_mirrored = seeded(InnerBroadcastMatmul, True)
wide_group_norm = seeded(WideGroupNorm)
equal_dims = seeded(EqualDims)
equal_dims_map = seeded(EqualDims, False)
fp16_range = seeded(Fp16Range)
cond_conv = seeded(CondConv)
bidirectional_gru = seeded(BidirectionalGru)
positional_map = seeded(PositionalMap)
relative_positions = seeded(RelativePositions)
block_attention = seeded(BlockAttention)
cumulative_sum = seeded(CumulativeSum)
split_heads = seeded(SplitHeads)
square_tokens = seeded(SquareTokens)
flipped = seeded(Flipped)
affine_warp = seeded(AffineWarp)
plane_norm = seeded(PlaneNorm)
circular_conv = seeded(CircularConv)
prototype_distances = seeded(PrototypeDistances)
volume_pools = seeded(VolumePools)
square_glu = seeded(SquareGlu)
square_block = seeded(SquareBlock)
selective_kernel = seeded(SelectiveKernel)
embedding_bags = seeded(EmbeddingBags)
area_resize = seeded(AreaResize)
dilations = seeded(Dilations)
linear_decoder = seeded(LinearDecoder)
square_lstm = seeded(SquareLstm)
square_steps = seeded(SquareSteps)
ranking = seeded(Ranking)
expert_routing = seeded(ExpertRouting)
gated_scores = seeded(GatedScores)
gram_matrix = seeded(GramMatrix)
triangles = seeded(Triangles)
channel_stats = seeded(ChannelStats)
trig_functions = seeded(TrigFunctions)
token_sort = seeded(TokenSort)
unpooling = seeded(Unpooling)
input_triangle = seeded(InputTriangle)


def mobilenet_v2():
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.mobilenet_v2(weights=None)
