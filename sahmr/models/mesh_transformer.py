"""METRO-style mesh transformer with the SAHMR contact-point branch (spec §2.3, §4.2), plain PyTorch.

    cfg = MeshTransformerConfig.preset("cpu")             # or "paper"
    net = MeshTransformer(cfg, body)                      # body: sahmr.body.model.BodyModel (sizes, template)
    out = net(image01, contact_crm, contact_part, contact_mask)   # MeshTransformerOutput

Pipeline (B batch, J = 14 joints, Vc / Vm / V = the body model's `level_sizes` reversed, N contact slots):

1. image `(B, 3, S, S)` in [0, 1] -> ImageNet normalisation -> timm classification trunk
   (`forward_features`; HRNet-W64-C for `paper`: `(B, 2048, 7, 7)`) -> `(B, G, C_img)` grid cells.
2. `conv_learn_tokens` (Conv1d G -> J + Vc, k = 1): every token is a learned affine combination of the
   cells `(B, J + Vc, C_img)`; concatenated after the template `(J + Vc, 3)` -> body tokens
   `(B, J + Vc, C_img + 3)`. The template is the body model at zero shape/pose with global orient
   (π, 0, 0) (camera axes: y down, facing −z), relative to its own H36M pelvis, 14 joints first, then the
   coarse vertices of the body model's hierarchy (spec §2.3).
3. contact tokens (scene branch only): `cat(contact_crm (B, N, 3), part_token[pid] (B, N, C_img))`,
   `part_token[p]` = mean of the image tokens of the coarse vertices of part p (`p = 1..7`, 0 -> zeros).
4. three `CPoseEncoder`s (input 2051/512/128, hidden 1024/256/128, output 512/128/3 for `paper`): per
   encoder, 4 post-LN BERT layers over body tokens (`scaled_dot_product_attention`), 2 linear-attention
   self-attention layers over contact tokens, 1 linear-attention cross-attention layer (body tokens query
   contact tokens), then shared `cls_head` + `residual` linear heads on both streams.
5. coarse vertices = body[:, J:] `(B, Vc, 3)` -> `upsampling` (Linear Vc -> Vm) -> `upsampling2`
   (Linear Vm -> V) along the vertex axis, initialised from the body model's barycentric upsampling
   matrices (bias 0) -> `verts (B, V, 3)` in camera axes relative to the pelvis used as origin ("crm").

"Linear attention" (spec §4.2, "Transformers are RNNs"): φ(x) = elu(x) + 1, with source mask m (True =
valid) `out_l = Σ_s (φ(q_l)·φ(k_s) m_s) v_s / (φ(q_l)·Σ_s φ(k_s) m_s + 1e-6)` per head; an all-masked
source gives exactly 0 (no NaN). Every contact slot is processed independently of the batch's other
samples; masked slots never influence the body tokens nor the valid contact slots.

Parameter names follow the original's `metro_enhanced.*` keys (`backbone.*` = timm's HRNet names,
`trans_encoder.{e}.bert.encoder.layer.{l}.attention.self.query`, `...linear_cp.{0,1}`, `...loftr_layer`,
`.bert.position_embeddings`, `.bert.img_embedding`, `.cls_head`, `.residual`, `conv_learn_tokens`,
`upsampling`, `upsampling2`); the unused BERT word/type embeddings and pooler are not built
(`sahmr convert` drops them, see `sahmr.models.convert`).

`quirks=True` indexes the part positional tokens without the +J joint offset (released weights, spec
§4.2 NOTE); `quirks=False` uses the part's own vertex positions.

`pad_contact_points` turns RCNet's packed contact points into the fixed-size padded set (spec §4.3):
without a generator a sample with n > N points keeps the evenly strided ranks `floor(i·n/N)`
(deterministic, independent of the other samples); with a generator its points are randomly permuted
first (sampling *without* replacement); `sampling="with_replacement"` is the original's seeded `randint`
draw, and explicit per-sample indices can be injected (parity with the original's recorded draws).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sahmr.body.parts import NUM_PARTS

__all__ = ["MeshTransformerConfig", "MeshTransformer", "MeshTransformerOutput", "MeshTopology", "CPoseEncoder", "BertLayer",
           "LinearAttentionLayer", "linear_attention", "pad_contact_points", "CONTACT_SAMPLINGS", "template_tokens",
           "build_image_trunk"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_JOINTS = 14


@dataclass
class MeshTransformerConfig:
    """Mesh-transformer hyper-parameters. Presets: `MeshTransformerConfig.preset("paper" | "cpu", **kw)`.

    `paper`: HRNet-W64-C (timm `hrnet_w64`, 2048-d, 7x7 cells at 224 px), encoders 2051/512/128 ->
    hidden 1024/256/128 -> out 512/128/3, 4 layers, 4 heads, intermediate 3072 in every encoder (the
    original's "legacy" setting), dropout 0.1 (hidden states and attention probabilities), 500 contact slots.
    `cpu`: HRNet-W18-small-C (timm `hrnet_w18_small`, 2048-d, 4x4 cells at 128 px; the cpu RCNet's trunk,
    so stage 2 can start from it, see `SAHMRTask`), hidden
    256/128/64, out 128/64/3, 2 layers, 4 heads, intermediate 2x hidden, 500 contact slots, dropout 0.1 on
    hidden states but none on attention probabilities: on CPU that dropout draws a mask over B x heads x T x T
    (T = 445) per layer and keeps SDPA off its fused kernel, ~25% of a training step (measured with fused
    Adam, 1 thread, with the earlier hrnet_w18_small_v2 trunk: 6.5 -> 5.0 s for a batch of 8).
    """

    name: str = "cpu"
    backbone: str = "hrnet_w18_small"
    backbone_weights: str | None = None
    crop_size: int = 128
    hidden_dims: tuple[int, ...] = (256, 128, 64)
    out_dims: tuple[int, ...] = (128, 64, 3)
    num_layers: int = 2
    num_heads: int = 4
    intermediate_sizes: tuple[int, ...] | None = None  # None -> 2 x hidden
    dropout: float = 0.1
    attn_dropout: float = 0.0  # the paper preset sets 0.1 (see the class docstring)
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 512
    num_contact_points: int = 500
    use_scene: bool = True
    quirks: bool = False
    init_std: float = 0.02

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "MeshTransformerConfig":
        if name == "paper":
            base = cls(name="paper", backbone="hrnet_w64", crop_size=224, hidden_dims=(1024, 256, 128),
                       out_dims=(512, 128, 3), num_layers=4, num_heads=4, intermediate_sizes=(3072, 3072, 3072), attn_dropout=0.1)
        elif name == "cpu":
            base = cls()
        else:
            raise ValueError(f"unknown mesh-transformer preset {name!r}; choose 'paper' or 'cpu'")
        from sahmr.config import with_preset

        cfg = with_preset(cls, base, overrides, what=f"mesh-transformer model ({name} preset)")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        n = len(self.hidden_dims)
        if len(self.out_dims) != n or n < 1 or self.out_dims[-1] != 3:
            raise ValueError(f"hidden_dims {self.hidden_dims} / out_dims {self.out_dims}: same length, last out dim 3")
        if self.intermediate_sizes is not None and len(self.intermediate_sizes) != n:
            raise ValueError(f"intermediate_sizes {self.intermediate_sizes}: one per encoder ({n})")
        for h in self.hidden_dims:
            if h % self.num_heads:
                raise ValueError(f"hidden size {h} is not divisible by num_heads {self.num_heads}")

    def intermediate(self, e: int) -> int:
        return self.intermediate_sizes[e] if self.intermediate_sizes is not None else 2 * self.hidden_dims[e]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MeshTopology:
    """What the mesh transformer needs of a body model (spec §2.3, §2.4), explicit so that a network can be
    built without one (e.g. from the original's saved template tokens for parity tests).

    level_sizes: (V, Vm, Vc) vertex counts of the hierarchy (SMPL: 6890, 1723, 431).
    template_joints14: (14, 3) and template_coarse: (Vc, 3): the template tokens (camera axes, relative to
    the template's H36M pelvis). coarse_part_ids: (Vc,) int64 contact part of each coarse vertex (0..7).
    upsampling: optional ((Vm, Vc), (V, Vm)) dense barycentric matrices initialising `upsampling`,
    `upsampling2` (None: PyTorch's default init, e.g. when a checkpoint overwrites them anyway).
    """

    level_sizes: tuple[int, int, int]
    template_joints14: Tensor
    template_coarse: Tensor
    coarse_part_ids: Tensor
    upsampling: tuple[Tensor, Tensor] | None = None

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.level_sizes)
        if len(sizes) != 3:
            raise ValueError(f"body model hierarchy: expected 3 levels (V, V_mid, V_coarse), got {sizes}")
        self.level_sizes = sizes
        vc = sizes[2]
        if tuple(self.template_joints14.shape) != (NUM_JOINTS, 3):
            raise ValueError(f"template_joints14: expected ({NUM_JOINTS}, 3), got {tuple(self.template_joints14.shape)}")
        if tuple(self.template_coarse.shape) != (vc, 3):
            raise ValueError(f"template_coarse: expected ({vc}, 3), got {tuple(self.template_coarse.shape)}")
        if tuple(self.coarse_part_ids.shape) != (vc,):
            raise ValueError(f"coarse_part_ids: expected ({vc},), got {tuple(self.coarse_part_ids.shape)}")
        pid = self.coarse_part_ids.long()
        if pid.numel() and (int(pid.min()) < 0 or int(pid.max()) > NUM_PARTS):
            raise ValueError(f"coarse_part_ids: expected values in 0..{NUM_PARTS}")
        self.coarse_part_ids = pid

    @classmethod
    def from_body(cls, body) -> "MeshTopology":
        """From a BodyModel: its hierarchy sizes, template (spec §2.3), coarse part ids, upsampling matrices."""
        sizes = tuple(body.level_sizes)
        if len(sizes) != 3:
            raise ValueError(f"body model hierarchy: expected 3 levels (V, V_mid, V_coarse), got {sizes}")
        joints, coarse = template_tokens(body)
        pid = body.sampler.downsample(body.part_ids[None, :, None].float(), 0, 2)[0, :, 0].round().long().cpu()
        up = (body.sampler.dense_upsampling_matrix(2, 1), body.sampler.dense_upsampling_matrix(1, 0))
        return cls(sizes, joints, coarse, pid, up)


@dataclass
class MeshTransformerOutput:
    """verts_crm (B, V, 3): mesh in camera axes relative to the origin pelvis; verts_mid (B, Vm, 3);
    verts_coarse (B, Vc, 3); joints_tokens (B, 14, 3) (the joint-token outputs; unused by the losses);
    contact_crm_out (B, N, 3) contact-branch reconstruction of its input points (None without scene).
    intermediates (with `return_intermediates=True`, else None): `image_fmap` (B, C_img, h, w) trunk output,
    `encoder_body_{e}` (B, J + Vc, out_e) and `encoder_contact_{e}` (B, N, out_e) per encoder e (the
    original's `cpose_img_feat_{e}` / `cpose_cp_feat_{e}`)."""

    verts_crm: Tensor
    verts_mid: Tensor
    verts_coarse: Tensor
    joints_tokens: Tensor
    contact_crm_out: Tensor | None
    intermediates: dict[str, Tensor] | None = None


# ------------------------------------------------------------------------------------ functions


def build_image_trunk(name: str, weights_path: str | None = None) -> tuple[nn.Module, int, int]:
    """timm classification network used through `forward_features` (offline, random init unless
    `weights_path`, a local state dict, is given). Returns (module, feature channels, reduction)."""
    import timm

    m = timm.create_model(name, pretrained=False)
    if weights_path is not None:
        from .backbones import load_backbone_weights

        load_backbone_weights(m, weights_path)
    red = int(m.feature_info[-1]["reduction"]) if getattr(m, "feature_info", None) else 32
    return m, int(m.num_features), red


def template_tokens(body) -> tuple[Tensor, Tensor]:
    """Template of spec §2.3 from a BodyModel: (joints14 (14, 3), coarse verts (Vc, 3)), camera axes,
    relative to the template's own H36M pelvis."""
    with torch.no_grad():
        orient = torch.tensor([[math.pi, 0.0, 0.0]], device=body.faces.device)
        out = body(global_orient=orient)
        verts = out.verts - out.pelvis[:, None]
        joints = out.joints14 - out.pelvis[:, None]
        coarse = body.sampler.downsample(verts, 0, len(body.level_sizes) - 1)
    return joints[0].float().cpu(), coarse[0].float().cpu()


def linear_attention(q: Tensor, k: Tensor, v: Tensor, kv_mask: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """Linear attention (spec §4.2). q (B, L, H, D), k (B, S, H, D), v (B, S, H, Dv), kv_mask (B, S) bool
    (True = valid). Returns (B, L, H, Dv) = Σ_s (φq_l·φk_s) v_s / (φq_l·Σ_s φk_s + eps), φ = elu + 1."""
    qf = F.elu(q) + 1.0
    kf = F.elu(k) + 1.0
    if kv_mask is not None:
        m = kv_mask[:, :, None, None].to(kf.dtype)
        kf = kf * m
        v = v * m
    kv = torch.einsum("bshd,bshv->bhdv", kf, v)
    z = 1.0 / (torch.einsum("blhd,bhd->blh", qf, kf.sum(1)) + eps)
    return torch.einsum("blhd,bhdv,blh->blhv", qf, kv, z)


CONTACT_SAMPLINGS = ("strided", "permutation", "with_replacement")


def pad_contact_points(points: Tensor, part: Tensor, batch: Tensor, batch_size: int, num_slots: int,
                       generator: torch.Generator | None = None, *, sampling: str | None = None,
                       indices: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Packed contact points -> fixed-size padded set (spec §4.3, §8).

    points (Q, 3), part (Q,) int64 in 1..7, batch (Q,) int64 (each sample's points contiguous or not; a
    sample's own order is kept) -> (points (B, N, 3) zero-padded, part (B, N) int64 (0 = padding), mask
    (B, N) bool). A sample with n <= N points keeps them in order (zero padding after); with n > N:

    * `sampling="strided"` (default without a generator): ranks floor(i·n/N), i = 0..N-1 (deterministic,
      evenly spread, independent of the other samples);
    * `"permutation"` (default with a generator): N points drawn without replacement;
    * `"with_replacement"`: the original's `torch.randint(n, (N,))` per sample, in batch order, drawn from
      `generator` (needed) — with the generator in the global RNG's state this reproduces its draws.

    indices (B, N) int64: explicit choice per sample (ranks into the sample's own points, −1 = padding slot),
    e.g. the original's recorded `pcSeg_sample_idx`; overrides `sampling`.
    """
    dev = points.device
    q = points.shape[0]
    i = torch.arange(num_slots, device=dev)
    if sampling is None:
        sampling = "strided" if generator is None else "permutation"
    if sampling not in CONTACT_SAMPLINGS:
        raise ValueError(f"contact-point sampling: expected one of {CONTACT_SAMPLINGS}, got {sampling!r}")
    if sampling != "strided" and generator is None and indices is None:
        raise ValueError(f"contact-point sampling {sampling!r} needs a torch.Generator (seeded)")
    batch = batch.long()
    counts = torch.bincount(batch, minlength=batch_size) if q else torch.zeros(batch_size, dtype=torch.long, device=dev)
    if indices is not None:
        if tuple(indices.shape) != (batch_size, num_slots):
            raise ValueError(f"contact indices: expected shape ({batch_size}, {num_slots}), got {tuple(indices.shape)}")
        src = indices.to(dev).long()
        if bool((src >= counts[:, None]).any()) or bool((src < -1).any()):
            raise ValueError("contact indices: every index must be -1 (padding) or < that sample's number of contact points")
        valid = src >= 0
        src = src.clamp(min=0)
    else:
        valid = i[None] < counts[:, None].clamp(max=num_slots)
        n = counts[:, None]
        if sampling == "strided":
            src = torch.where(n > num_slots, torch.div(i[None] * n, num_slots, rounding_mode="floor"), i[None])
        elif sampling == "permutation":
            src = i[None].expand(batch_size, -1)
        else:  # with replacement, one randint per sample that has more points than slots, in batch order
            src = i[None].repeat(batch_size, 1)
            for b in (counts > num_slots).nonzero().flatten().tolist():
                draw = torch.randint(int(counts[b]), (num_slots,), generator=generator, device=generator.device)
                src[b] = draw.to(dev)
    if q == 0:
        return (points.new_zeros(batch_size, num_slots, 3), torch.zeros(batch_size, num_slots, dtype=torch.long, device=dev),
                torch.zeros(batch_size, num_slots, dtype=torch.bool, device=dev))
    offsets = torch.cumsum(counts, 0) - counts
    if indices is None and sampling == "permutation":
        key = torch.rand(q, generator=generator, device=generator.device).to(device=dev, dtype=torch.float64)
        order = torch.argsort(batch.double() * 2.0 + key, stable=True)
    else:
        order = torch.argsort(batch, stable=True)
    idx = order[(offsets[:, None] + src).clamp(max=q - 1)]
    pts = torch.where(valid[..., None], points[idx], points.new_zeros(()))
    pid = torch.where(valid, part.long()[idx], torch.zeros_like(idx))
    mask = valid & (pid != 0)
    return pts, pid, mask


# -------------------------------------------------------------------------------------- modules


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)


class _AttnOutput(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)


class _Attention(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.self = _SelfAttention(hidden)
        self.output = _AttnOutput(hidden, eps)


class _Dense(nn.Module):
    def __init__(self, d_in: int, d_out: int, eps: float | None = None):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(d_out, eps=eps)


class BertLayer(nn.Module):
    """Post-LN transformer layer: a = LN(x + Drop(Wo·MHSA(x))); y = LN(a + Drop(W2·GELU(W1·a))).
    x (B, T, H) -> (B, T, H); no attention mask; attention-prob dropout inside SDPA."""

    def __init__(self, hidden: int, heads: int, intermediate: int, dropout: float, attn_dropout: float, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = _Attention(hidden, eps)
        self.intermediate = _Dense(hidden, intermediate)
        self.output = _Dense(intermediate, hidden, eps)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = attn_dropout

    def forward(self, x: Tensor) -> Tensor:
        b, t, h = x.shape
        sa = self.attention.self

        def split(y):
            return y.view(b, t, self.heads, h // self.heads).transpose(1, 2)

        ctx = F.scaled_dot_product_attention(split(sa.query(x)), split(sa.key(x)), split(sa.value(x)),
                                             dropout_p=self.attn_dropout if self.training else 0.0)
        ctx = ctx.transpose(1, 2).reshape(b, t, h)
        ao = self.attention.output
        a = ao.LayerNorm(x + self.dropout(ao.dense(ctx)))
        y = self.output.dense(F.gelu(self.intermediate.dense(a)))
        return self.output.LayerNorm(a + self.dropout(y))


class LinearAttentionLayer(nn.Module):
    """LoFTR-style encoder layer with linear attention (spec §4.2). forward(x (B, L, H), src (B, S, H),
    src_mask (B, S) bool) -> message (B, L, H) (the caller adds the residual)."""

    def __init__(self, hidden: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, hidden, bias=False)
        self.v_proj = nn.Linear(hidden, hidden, bias=False)
        self.merge = nn.Linear(hidden, hidden, bias=False)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, 2 * hidden, bias=False), nn.ReLU(True),
                                 nn.Linear(2 * hidden, hidden, bias=False))
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, src: Tensor, src_mask: Tensor | None = None) -> Tensor:
        b, l, h = x.shape
        s = src.shape[1]
        d = h // self.heads
        q = self.q_proj(x).view(b, l, self.heads, d)
        k = self.k_proj(src).view(b, s, self.heads, d)
        v = self.v_proj(src).view(b, s, self.heads, d)
        m = self.merge(linear_attention(q, k, v, src_mask).reshape(b, l, h))
        m = self.dropout(self.norm1(m))
        m = self.mlp(torch.cat([x, m], -1))
        return self.dropout(self.norm2(m))


class _EncoderStack(nn.Module):
    def __init__(self, cfg: MeshTransformerConfig, e: int):
        super().__init__()
        h = cfg.hidden_dims[e]
        self.layer = nn.ModuleList(
            [BertLayer(h, cfg.num_heads, cfg.intermediate(e), cfg.dropout, cfg.attn_dropout, cfg.layer_norm_eps)
             for _ in range(cfg.num_layers)])
        if cfg.use_scene:
            self.linear_cp = nn.ModuleList([LinearAttentionLayer(h, cfg.num_heads, 0.0) for _ in range(2)])
            self.loftr_layer = LinearAttentionLayer(h, cfg.num_heads, cfg.dropout)


class _Bert(nn.Module):
    def __init__(self, cfg: MeshTransformerConfig, e: int, d_in: int, num_tokens: int):
        super().__init__()
        h = cfg.hidden_dims[e]
        self.encoder = _EncoderStack(cfg, e)
        self.position_embeddings = nn.Embedding(max(cfg.max_position_embeddings, num_tokens), h)
        self.img_embedding = nn.Linear(d_in, h)


@dataclass
class ContactTokens:
    """The first encoder's contact input ``cat([xyz, part_tok[pid]], -1)`` (B, N, 3 + C), kept factored.

    xyz (B, N, 3) contact points relative to the origin; part_tok (B, 8, C) image part tokens (row 0 =
    padding); pid (B, N) int64 part ids. Every contact point carries one of only 8 part tokens, so a linear
    layer of the concatenation is ``W_xyz xyz + (W_tok part_tok + b)[pid]``: 8 instead of N rows through the
    C = 2048-wide weight (for N = 500, ~15% of a cpu-preset SAHMR forward). Same values up to float
    rounding (the order of the sums differs), same gradients."""

    xyz: Tensor
    part_tok: Tensor
    pid: Tensor

    def linear(self, layer: nn.Linear) -> Tensor:
        w = layer.weight
        per_part = F.linear(self.part_tok, w[:, 3:], layer.bias)  # (B, 8, out)
        per_point = torch.gather(per_part, 1, self.pid[..., None].expand(-1, -1, per_part.shape[-1]))
        return per_point + self.xyz @ w[:, :3].t()

    def dense(self) -> Tensor:
        """(B, N, 3 + C) the concatenation itself (reference / tests)."""
        pt = torch.gather(self.part_tok, 1, self.pid[..., None].expand(-1, -1, self.part_tok.shape[-1]))
        return torch.cat([self.xyz, pt], -1)


def _apply_linear(layer: nn.Linear, x: "Tensor | ContactTokens") -> Tensor:
    return x.linear(layer) if isinstance(x, ContactTokens) else layer(x)


class CPoseEncoder(nn.Module):
    """One encoder (spec §4.2 "CPOSE encoder e"). forward(body (B, T, D_in), cp (B, N, D_in) | ContactTokens | None,
    cp_mask (B, N) bool, cp_pid (B, N) int64) -> (body (B, T, D_out), cp (B, N, D_out) | None).

    `part_pos_avg (8, T)` (a buffer of the owner) averages positional embeddings per contact part."""

    def __init__(self, cfg: MeshTransformerConfig, e: int, d_in: int, num_tokens: int):
        super().__init__()
        self.use_scene = cfg.use_scene
        self.bert = _Bert(cfg, e, d_in, num_tokens)
        self.cls_head = nn.Linear(cfg.hidden_dims[e], cfg.out_dims[e])
        self.residual = nn.Linear(d_in, cfg.out_dims[e])
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, body: Tensor, cp: Tensor | None, cp_mask: Tensor | None, cp_pid: Tensor | None,
                part_pos_avg: Tensor | None) -> tuple[Tensor, Tensor | None]:
        t = body.shape[1]
        pos = self.bert.position_embeddings.weight[:t]  # (T, H)
        h = self.dropout(self.bert.img_embedding(body) + pos[None])
        for layer in self.bert.encoder.layer:
            h = layer(h)
        if not self.use_scene or cp is None:
            return self.cls_head(h) + self.residual(body), None
        part_pos = part_pos_avg.to(pos.dtype) @ pos  # (8, H), row 0 = 0
        c = self.dropout(_apply_linear(self.bert.img_embedding, cp) + part_pos[cp_pid])
        enc = self.bert.encoder
        for layer in enc.linear_cp:
            c = c + layer(c, c, cp_mask)
        h = h + enc.loftr_layer(h, c, cp_mask)
        return self.cls_head(h) + self.residual(body), self.cls_head(c) + _apply_linear(self.residual, cp)


class MeshTransformer(nn.Module):
    """The METRO_enhanced network (spec §4.2); `cfg.use_scene=False` = the image-only transformer.

    forward(image (B, 3, S', S') RGB in [0, 1], contact_crm (B, N, 3) | None, contact_part (B, N) int64,
    contact_mask (B, N) bool) -> MeshTransformerOutput. Sizes come from `body` (a BodyModel).
    """

    def __init__(self, cfg: MeshTransformerConfig | None, body=None, *, topology: MeshTopology | None = None):
        super().__init__()
        self.cfg = cfg = cfg or MeshTransformerConfig()
        cfg.validate()
        if (body is None) == (topology is None):
            raise ValueError("MeshTransformer: pass exactly one of body (a BodyModel) or topology (a MeshTopology)")
        topo = topology if topology is not None else MeshTopology.from_body(body)
        self.num_verts, self.num_mid, self.num_coarse = topo.level_sizes
        self.num_joints = NUM_JOINTS
        t = self.num_joints + self.num_coarse

        self.backbone, c_img, red = build_image_trunk(cfg.backbone, cfg.backbone_weights)
        cells = math.ceil(cfg.crop_size / red) ** 2
        self.img_channels = c_img
        self.conv_learn_tokens = nn.Conv1d(cells, t, 1)
        d_ins = [c_img + 3] + list(cfg.out_dims[:-1])
        self.trans_encoder = nn.ModuleList([CPoseEncoder(cfg, e, d_ins[e], t) for e in range(len(cfg.hidden_dims))])
        self.upsampling = nn.Linear(self.num_coarse, self.num_mid)
        self.upsampling2 = nn.Linear(self.num_mid, self.num_verts)

        template = torch.cat([topo.template_joints14, topo.template_coarse]).float().cpu()
        self.register_buffer("template", template, persistent=False)  # (T, 3)
        coarse_pid = topo.coarse_part_ids.cpu()
        self.register_buffer("coarse_part_ids", coarse_pid, persistent=False)
        avg = torch.zeros(NUM_PARTS + 1, t)  # image part tokens: token J + v (spec §4.2)
        for p in range(1, NUM_PARTS + 1):
            idx = (coarse_pid == p).nonzero().flatten()
            if len(idx):
                avg[p, self.num_joints + idx] = 1.0 / len(idx)
        self.register_buffer("part_tok_avg", avg, persistent=False)
        # positional part tokens: index v (quirk, released weights) or J + v
        self.register_buffer("part_pos_avg", avg.roll(-self.num_joints, 1) if cfg.quirks else avg.clone(), persistent=False)
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.reset_parameters(topo.upsampling)

    def reset_parameters(self, upsampling: tuple[Tensor, Tensor] | None = None) -> None:
        """BERT init (Linear/Embedding N(0, init_std), bias 0, LayerNorm 1/0) on the transformer; the
        upsampling layers from the barycentric matrices ((Vm, Vc), (V, Vm)) when given (bias 0)."""
        std = self.cfg.init_std
        for m in self.trans_encoder.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=std)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if upsampling is None:
            return
        with torch.no_grad():
            self.upsampling.weight.copy_(upsampling[0])
            self.upsampling2.weight.copy_(upsampling[1])
            self.upsampling.bias.zero_()
            self.upsampling2.bias.zero_()

    def prepare_image(self, image: Tensor) -> Tensor:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image: expected (B, 3, S, S) RGB in [0, 1], got {tuple(image.shape)}")
        s = self.cfg.crop_size
        if image.shape[-2:] != (s, s):
            image = F.interpolate(image, size=(s, s), mode="bilinear", align_corners=True)
        return (image - self.img_mean) / self.img_std

    def image_features(self, image: Tensor) -> Tensor:
        """(B, 3, S', S') RGB in [0, 1] -> trunk feature map (B, C_img, h, w) (paper: (B, 2048, 7, 7))."""
        return self.backbone.forward_features(self.prepare_image(image.float()))

    def image_tokens(self, image: Tensor, fmap: Tensor | None = None) -> Tensor:
        """(B, 3, S', S') -> learned tokens (B, J + Vc, C_img); `fmap` = an already computed `image_features`."""
        f = self.image_features(image) if fmap is None else fmap
        f = f.flatten(2).transpose(1, 2)  # (B, G, C)
        if f.shape[1] != self.conv_learn_tokens.in_channels:
            raise ValueError(f"backbone gave {f.shape[1]} grid cells, conv_learn_tokens expects "
                             f"{self.conv_learn_tokens.in_channels} (crop_size {self.cfg.crop_size})")
        return self.conv_learn_tokens(f)

    def forward(self, image: Tensor, contact_crm: Tensor | None = None, contact_part: Tensor | None = None,
                contact_mask: Tensor | None = None, return_intermediates: bool = False) -> MeshTransformerOutput:
        """return_intermediates: also return the trunk's feature map and every encoder's outputs
        (`MeshTransformerOutput.intermediates`, for parity tests and inspection)."""
        inter: dict[str, Tensor] | None = {} if return_intermediates else None
        fmap = self.image_features(image)
        if inter is not None:
            inter["image_fmap"] = fmap
        tokens = self.image_tokens(image, fmap)
        b = tokens.shape[0]
        body = torch.cat([self.template[None].expand(b, -1, -1).to(tokens.dtype), tokens], -1)
        cp = pid = None
        if self.cfg.use_scene:
            if contact_crm is None or contact_part is None or contact_mask is None:
                raise ValueError("the scene branch needs contact_crm (B, N, 3), contact_part (B, N), contact_mask (B, N)")
            if contact_crm.shape[:1] != (b,) or contact_crm.shape[2:] != (3,) or contact_part.shape != contact_crm.shape[:2] \
                    or contact_mask.shape != contact_crm.shape[:2]:
                raise ValueError(f"contact set: expected ({b}, N, 3), ({b}, N), ({b}, N); got {tuple(contact_crm.shape)}, "
                                 f"{tuple(contact_part.shape)}, {tuple(contact_mask.shape)}")
            part_tok = torch.einsum("pt,btc->bpc", self.part_tok_avg.to(tokens.dtype), tokens)  # (B, 8, C)
            pid = contact_part.long().clamp(0, NUM_PARTS)
            cp = ContactTokens(contact_crm.to(tokens.dtype), part_tok, pid)  # = cat([xyz, part_tok[pid]], -1)
            contact_mask = contact_mask.bool()
        for e, enc in enumerate(self.trans_encoder):
            body, cp = enc(body, cp, contact_mask, pid, self.part_pos_avg)
            if inter is not None:
                inter[f"encoder_body_{e}"] = body
                if cp is not None:
                    inter[f"encoder_contact_{e}"] = cp
        j = self.num_joints
        coarse = body[:, j:]
        mid = self.upsampling(coarse.transpose(1, 2)).transpose(1, 2)
        full = self.upsampling2(mid.transpose(1, 2)).transpose(1, 2)
        return MeshTransformerOutput(verts_crm=full, verts_mid=mid, verts_coarse=coarse, joints_tokens=body[:, :j],
                                     contact_crm_out=cp, intermediates=inter)
