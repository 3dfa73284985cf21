"""Transformer blocks of the SMT's region encoder: ALiBi attention biases (Press et al. 2022)
and pre-/post-norm encoder layers (see `spatiomol.models.smt` for the architecture).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: ALiBi slope families of `alibi_slopes`
ALIBI_SLOPES = ("press", "authors")


# ------------------------------------------------------------------ ALiBi
def alibi_slopes(n_heads: int, kind: str = "press") -> torch.Tensor:
    """Head-specific ALiBi slopes.

    ``kind="press"`` (Press et al. 2022): for ``n`` a power of two ``m_h = 2^(-8h/n)``,
    ``h = 1..n`` (4 heads: 1/4, 1/16, 1/64, 1/256); otherwise the slopes of the closest
    smaller power of two followed by every other slope of the next power of two.

    ``kind="authors"`` (the reference implementation): ``m_i = 1 / 2^(i // (n // 2))``,
    ``i = 0..n-1`` (integer division; 4 heads: 1, 1, 1/2, 1/2; 2 heads: 1, 1/2; one
    head: 1).

    Returns
    -------
    (n_heads,) float32 tensor
    """
    if n_heads < 1:
        raise ValueError(f"n_heads must be positive, got {n_heads}")
    if kind not in ALIBI_SLOPES:
        raise ValueError(f"alibi_slopes must be one of {ALIBI_SLOPES}, got {kind!r}")
    if kind == "authors":
        group = max(1, n_heads // 2)
        return torch.tensor([1.0 / 2.0 ** (i // group) for i in range(n_heads)], dtype=torch.float32)

    def geometric(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (h + 1) for h in range(n)]

    if math.log2(n_heads).is_integer():
        slopes = geometric(n_heads)
    else:
        closest = 2 ** math.floor(math.log2(n_heads))
        slopes = geometric(closest) + geometric(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_tokens: int, slopes: torch.Tensor, with_cls: bool) -> torch.Tensor:
    """Additive attention bias ``B[h, a, b] = -slope_h · |a - b|``.

    Parameters
    ----------
    n_tokens : int
        Number of gene tokens ``ℓ``.
    slopes : (h,) tensor
    with_cls : bool
        Prepend a [CLS] row/column with zero bias (a global token).

    Returns
    -------
    (h, L, L) float32 tensor, ``L = ℓ + with_cls``.
    """
    pos = torch.arange(n_tokens, dtype=torch.float32)
    distance = (pos[None, :] - pos[:, None]).abs()
    bias = -slopes.float()[:, None, None] * distance[None]
    if with_cls:
        bias = F.pad(bias, (1, 0, 1, 0), value=0.0)
    return bias


# ------------------------------------------------------------ nn.Modules
class ALiBiSelfAttention(nn.Module):
    """Multi-head bidirectional self-attention with an optional additive bias (SDPA)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.dropout = dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, length, _ = x.shape
        qkv = self.qkv(x).view(b, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each (B, h, L, d_h)

    def _merge(self, o: torch.Tensor) -> torch.Tensor:
        b, _, length, _ = o.shape
        return self.out(o.transpose(1, 2).reshape(b, length, self.n_heads * self.head_dim))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """(B, L, d) → (B, L, d) via ``scaled_dot_product_attention`` (bias: (h, L, L) or None)."""
        q, k, v = self._split(x)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout if self.training else 0.0)
        return self._merge(o)

    def attention_weights(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Explicit ``softmax(QKᵀ/√d_h + B)``: (B, h, L, L); rows sum to 1 (no dropout)."""
        q, k, _ = self._split(x)
        logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if bias is not None:
            logits = logits + bias
        return logits.softmax(dim=-1)

    def forward_explicit(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Same as `forward` in eval mode, from `attention_weights` (for verification)."""
        _, _, v = self._split(x)
        return self._merge(self.attention_weights(x, bias) @ v)


class PreNormEncoderLayer(nn.Module):
    """``x + Dropout(MHSA(LN(x)))`` then ``x + Dropout(FFN(LN(x)))``, GELU FFN."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(d_model)
        self.attention = ALiBiSelfAttention(d_model, n_heads, dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the attention of this block reads from its input ``x``."""
        return self.attention_norm(x)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), bias))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class PostNormEncoderLayer(PreNormEncoderLayer):
    """``LN(x + Dropout(MHSA(x)))`` then ``LN(x + Dropout(FFN(x)))``, ReLU FFN (reference code)."""

    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__(d_model, n_heads, dropout)
        self.ffn[1] = nn.ReLU()

    def attention_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = self.attention_norm(x + self.dropout(self.attention(x, bias)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))
