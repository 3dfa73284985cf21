"""The Spatiomolecular Transformer (SMT; paper §3, App. A.3, A.5, A.7).

Architecture
------------
1. **Tokens.** A region's expression vector (genes in ``brain.genes`` order, optionally
   reordered first by `spatiomol.data.genome.order_genes`, see ``gene_order``) is cut
   into ``ℓ = ceil(g / k)`` contiguous bins of ``k = token_encoder_dim`` genes. When
   ``k`` does not divide ``g`` the last bin is zero-padded; the number of padded
   positions is kept in ``n_padding_genes_`` and stated in ``notes_``.
   ``token_encoder_dim="auto"`` picks ``k = min(60, max(1, g // 64))`` (`resolve_token_size`):
   the paper's 60 genes per token when that leaves at least 64 tokens, otherwise the
   largest ``k`` that does (``ℓ = ceil(g / k) >= g / k >= 64`` whenever ``g >= 64``;
   fewer genes give one gene per token). hcp-s100 (810 genes): k = 12, 68 tokens;
   hcp-s400 (282 genes): k = 4, 71 tokens; the paper's 7,380 genes: k = 60, 123 tokens.
2. **Value projection.** Each token's ``k`` values → ``d_model`` by one learned linear
   map shared by all tokens (no positional embedding; position enters through ALiBi).
   ``position_embedding=True`` (beyond the paper, an ablation) adds a learned vector per
   gene-token position, BERT's absolute embedding, so that the encoder knows which bin of
   genes a token holds and not only how far apart two tokens are.
3. **Optional [CLS] token** (``use_cls``): the region's MNI centroid divided by
   ``coord_scale_mm`` (100 mm) → ``d_model`` by a learned linear map, prepended to the
   sequence, attending and attended like any token and kept in the output sequence.
   ALiBi choice: the [CLS] token has *no* distance penalty to or from any gene token
   (bias 0), i.e. it is a global token; gene tokens are at positions ``0..ℓ-1``. (The
   reference implementation's FlashAttention call instead treats it as position 0.)
4. **Encoder.** ``num_layers`` bidirectional blocks. ``norm_first=True`` (default),
   pre-norm: ``x = x + Dropout(MHSA(LayerNorm(x)))``, ``x = x + Dropout(FFN(LayerNorm(x)))``
   with ``FFN = Linear(d, 4d) → GELU → Linear(4d, d)``, then a final LayerNorm.
   ``norm_first=False``, post-norm as in the reference implementation:
   ``x = LayerNorm(x + Dropout(MHSA(x)))``, ``x = LayerNorm(x + Dropout(FFN(x)))`` with a
   ReLU FFN and no final LayerNorm (the reference code also has no attention output
   projection; here both forms keep it). Attention is
   ``torch.nn.functional.scaled_dot_product_attention`` with an additive float mask
   ``B[h, a, b] = -m_h · |a - b|`` (ALiBi, Press et al. 2022), added to the *scaled*
   logits: ``softmax(QKᵀ/√d_h + B)`` — the convention of Press et al. and FlashAttention
   (the paper's formula puts ``B`` inside the scaling; that only rescales the slopes by
   √d_h). Slopes (``alibi_slopes``): ``"press"`` (default), the geometric sequence
   ``2^(-8h/n)``, ``h = 1..n`` (with Press et al.'s interleaving for head counts that are
   not powers of two; 4 heads: 1/4 … 1/256, so over 5–14 tokens three heads are nearly
   unbiased); ``"authors"``, the reference implementation's ``1 / 2^(i // (n // 2))``,
   ``i = 0..n-1`` (4 heads: 1, 1, 1/2, 1/2). ``use_alibi=False`` drops the bias (ablation).
5. **Region embedding.** Per-token linear map ``d_model → encoder_output_dim`` (the paper: ≤ 10),
   flattened: ``z_i ∈ R^p``, ``p = L · encoder_output_dim`` with ``L = ℓ (+1 with [CLS])``.
6. **Decoder.** ``[z_i ‖ z_j] → (Linear → BatchNorm1d or LayerNorm → ReLU → Dropout) × len(deep_hidden_dims)
   → Linear → 1``. Symmetry: the decoder runs on both orders in one batch and the two
   outputs are averaged, in prediction always and in training with
   ``pair_orders="averaged"`` (see `spatiomol.models.training`).

Efficiency
----------
`SMTNetwork.forward` encodes each *distinct* region of a batch once (``torch.unique``),
and the decoder's first layer, linear in ``[z_i ‖ z_j]``, is also computed once per
region and gathered per pair (`spatiomol.models.mlp.pair_head`). Reference paths, kept
to prove equality in tests and for the benchmarks (``benchmarks/smt_throughput.py``,
``benchmarks/neural_throughput.py``): `SMTNetwork.forward_per_pair` encodes both regions
of every pair and decodes per pair (the reference implementation's way);
`SMTNetwork.forward_pairwise_decoder` encodes per region but decodes per pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from spatiomol.data.brain import Brain
from spatiomol.data.genome import GENE_ORDERS, order_genes
from spatiomol.models.mlp import hidden_block, pair_head, pair_head_per_pair
from spatiomol.models.neural import Hyperparameter, NeuralConnectivityModel
from spatiomol.models.transformer import (
    ALIBI_SLOPES,
    PostNormEncoderLayer,
    PreNormEncoderLayer,
    alibi_bias,
    alibi_slopes,
)

#: genes per token of the paper (Table 4 default) and the fewest tokens "auto" keeps
PAPER_TOKEN_SIZE, MIN_AUTO_TOKENS = 60, 64


class SMTEncoder(nn.Module):
    """Region encoder: tokens (B, ℓ, k) [+ coords (B, 3)] → embedding (B, L·d_out).

    Parameters
    ----------
    token_size : int
        Genes per token ``k``.
    n_tokens : int
        Gene tokens per region ``ℓ``.
    d_model, n_heads, n_layers : int
    d_out : int
        Per-token output dimension (the paper: ≤ 10).
    dropout : float
        Attention, residual and FFN dropout.
    use_alibi, use_cls : bool
    alibi_kind : {"press", "authors"}
        Slope family (`alibi_slopes`).
    norm_first : bool
        Pre-norm/GELU blocks and a final LayerNorm (True) or post-norm/ReLU blocks (False).
    position_embedding : bool
        Add a learned (ℓ, d_model) absolute embedding to the gene tokens (not to [CLS]).
    """

    def __init__(
        self,
        token_size: int,
        n_tokens: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        d_out: int,
        dropout: float,
        use_alibi: bool,
        use_cls: bool,
        alibi_kind: str = "press",
        norm_first: bool = True,
        position_embedding: bool = False,
    ) -> None:
        super().__init__()
        self.use_cls = use_cls
        self.n_tokens = n_tokens
        self.value_projection = nn.Linear(token_size, d_model)
        # BERT's initialisation of its position table (normal, SD 0.02)
        self.token_position = nn.Parameter(0.02 * torch.randn(n_tokens, d_model)) if position_embedding else None
        self.coord_projection = nn.Linear(3, d_model) if use_cls else None
        block = PreNormEncoderLayer if norm_first else PostNormEncoderLayer
        self.layers = nn.ModuleList(block(d_model, n_heads, dropout) for _ in range(n_layers))
        # post-norm blocks already end with a LayerNorm
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output_projection = nn.Linear(d_model, d_out)
        self.sequence_length = n_tokens + int(use_cls)
        self.embedding_dim = self.sequence_length * d_out
        bias = alibi_bias(n_tokens, alibi_slopes(n_heads, alibi_kind), use_cls) if use_alibi else None
        self.register_buffer("attention_bias", bias, persistent=False)

    def _input_sequence(self, tokens: torch.Tensor, coords: torch.Tensor | None) -> torch.Tensor:
        x = self.value_projection(tokens)
        if self.token_position is not None:
            x = x + self.token_position
        if self.use_cls:
            if coords is None:
                raise ValueError("SMT with use_cls=True needs region coordinates")
            x = torch.cat([self.coord_projection(coords).unsqueeze(1), x], dim=1)
        return x

    def forward(self, tokens: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        x = self._input_sequence(tokens, coords)
        for layer in self.layers:
            x = layer(x, self.attention_bias)
        return self.output_projection(self.final_norm(x)).flatten(start_dim=1)

    def final_layer_attention(self, tokens: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights of the last layer: (B, h, L, L), computed explicitly."""
        x = self._input_sequence(tokens, coords)
        for layer in self.layers[:-1]:
            x = layer(x, self.attention_bias)
        last = self.layers[-1]
        return last.attention.attention_weights(last.attention_input(x), self.attention_bias)


class SMTNetwork(nn.Module):
    """Encoder + symmetrised MLP decoder on region pairs."""

    def __init__(
        self, encoder: SMTEncoder, deep_hidden_dims: Sequence[int], dropout: float, norm: str = "batch"
    ) -> None:
        super().__init__()
        self.encoder = encoder
        layers: list[nn.Module] = []
        width = 2 * encoder.embedding_dim
        for h in deep_hidden_dims:
            layers += hidden_block(width, int(h), dropout, norm)
            width = int(h)
        layers.append(nn.Linear(width, 1))
        self.decoder = nn.Sequential(*layers)

    def output_layer(self) -> nn.Linear:
        """The decoder's last layer (→ 1 output), which training may start at the target mean."""
        return self.decoder[-1]

    def encode_regions(
        self, region_tensors: dict[str, torch.Tensor], regions: torch.Tensor, chunk_size: int | None = None
    ) -> torch.Tensor:
        """Embeddings (R, p) of regions (R,) read from ``region_tensors``.

        ``region_tensors``: ``"tokens"`` (n_regions, ℓ, k) and, with [CLS], ``"coords"``
        (n_regions, 3). Without gradients, regions are encoded in chunks of 256.
        """
        if chunk_size is None:
            chunk_size = len(regions) if torch.is_grad_enabled() else 256
        coords = region_tensors.get("coords")
        parts = []
        for s in range(0, len(regions), max(chunk_size, 1)):
            r = regions[s : s + chunk_size]
            parts.append(self.encoder(region_tensors["tokens"][r], None if coords is None else coords[r]))
        return torch.cat(parts, dim=0)

    def decode(self, z_i: torch.Tensor, z_j: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
        """(B, p), (B, p) → (B,): decoder on ``[z_i‖z_j]`` per pair (mean with ``[z_j‖z_i]``
        when ``symmetric``). Reference for `decode_indexed`."""
        return pair_head_per_pair(self.decoder, z_i, z_j, symmetric)

    def decode_indexed(self, z: torch.Tensor, i: torch.Tensor, j: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
        """Decode pairs of rows ``(i, j)`` of region embeddings ``z`` (R, p), the decoder's
        first layer once per region (`spatiomol.models.mlp.pair_head`)."""
        return pair_head(self.decoder, z, i, j, symmetric)

    def forward(
        self, region_tensors: dict[str, torch.Tensor], i: torch.Tensor, j: torch.Tensor, symmetric: bool = True
    ) -> torch.Tensor:
        """Per-region path: encode each distinct region of the batch once, decode per region, gather pairs."""
        regions, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
        z = self.encode_regions(region_tensors, regions, chunk_size=len(regions))
        # every row of z is used by the batch: no second unique/gather (or its backward)
        return pair_head(self.decoder, z, inverse[: len(i)], inverse[len(i) :], symmetric, compact=True)

    def forward_pairwise_decoder(
        self, region_tensors: dict[str, torch.Tensor], i: torch.Tensor, j: torch.Tensor, symmetric: bool = True
    ) -> torch.Tensor:
        """Reference path: regions encoded once, the decoder run per pair (benchmark/tests only)."""
        regions, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
        z = self.encode_regions(region_tensors, regions, chunk_size=len(regions))
        return self.decode(z[inverse[: len(i)]], z[inverse[len(i) :]], symmetric)

    def forward_per_pair(
        self, region_tensors: dict[str, torch.Tensor], i: torch.Tensor, j: torch.Tensor, symmetric: bool = True
    ) -> torch.Tensor:
        """Reference per-pair path: encode both regions of every pair, decode per pair (tests/benchmark only)."""
        coords = region_tensors.get("coords")
        tokens = region_tensors["tokens"]
        z_i = self.encoder(tokens[i], None if coords is None else coords[i])
        z_j = self.encoder(tokens[j], None if coords is None else coords[j])
        return self.decode(z_i, z_j, symmetric)


def resolve_token_size(token_encoder_dim: int | str, n_genes: int) -> int:
    """Genes per token ``k``: ``token_encoder_dim`` itself, or for ``"auto"``
    ``min(60, max(1, n_genes // 64))`` — at least 64 tokens when ``n_genes >= 64``, never
    more genes per token than the paper's 60."""
    if isinstance(token_encoder_dim, str):
        if token_encoder_dim != "auto":
            raise ValueError(f"token_encoder_dim must be a positive integer or 'auto', got {token_encoder_dim!r}")
        return min(PAPER_TOKEN_SIZE, max(1, int(n_genes) // MIN_AUTO_TOKENS))
    if isinstance(token_encoder_dim, bool) or int(token_encoder_dim) != token_encoder_dim or token_encoder_dim < 1:
        raise ValueError(f"token_encoder_dim must be a positive integer or 'auto', got {token_encoder_dim!r}")
    return int(token_encoder_dim)


def tokenize(X: np.ndarray, token_size: int) -> tuple[np.ndarray, int]:
    """Cut rows of ``X`` (r, g) into contiguous bins of ``token_size`` genes.

    Returns
    -------
    tokens : (r, ceil(g/k), k) float32 array
        The last bin zero-padded when ``k`` does not divide ``g``.
    n_padding : int
        Number of zero-padded positions in the last bin.
    """
    r, g = X.shape
    n_tokens = math.ceil(g / token_size)
    n_padding = n_tokens * token_size - g
    padded = np.zeros((r, n_tokens * token_size), dtype=np.float32)
    padded[:, :g] = X
    return padded.reshape(r, n_tokens, token_size), n_padding


# ---------------------------------------------------------------- estimator
class SMT(NeuralConnectivityModel):
    """Spatiomolecular Transformer (scikit-learn style estimator; see module docstring).

    Parameters
    ----------
    use_cls : bool
        Prepend the coordinate [CLS] token ("SMT w/ [CLS]").
    token_encoder_dim : int or "auto"
        Genes per token ``k`` (paper default 60); ``"auto"``: `resolve_token_size`.
    d_model : int
        Embedding width.
    encoder_output_dim : int
        Per-token output dimension ``d_out`` (the paper: ≤ 10, Table 4's grid 5 or 10). Larger
        values widen the region embedding ``p = L·d_out`` where there are few tokens (an
        ablation beyond the paper; see docs/models_neural.md).
    use_alibi : bool
        ALiBi attention biases (False: ablation, no positional information).
    alibi_slopes : {"press", "authors"}
        Slope family (see `alibi_slopes`).
    norm_first : bool
        Pre-norm/GELU encoder blocks (True) or post-norm/ReLU as in the reference code.
    position_embedding : bool
        A learned absolute embedding per gene-token position on top of ALiBi (False, the
        paper: none; True is an ablation beyond the paper, see docs/models_neural.md).
    nhead, num_layers : int
        Attention heads and encoder layers.
    deep_hidden_dims : sequence of int
        Decoder widths (2–3 layers).
    transformer_dropout, dropout_rate : float
        Encoder dropout and decoder dropout.
    hidden_norm : {"batch", "layer"}
        Normalisation in every decoder layer (`spatiomol.models.mlp.HIDDEN_NORMS`).
    learning_rate, weight_decay, batch_size, epochs, patience, min_steps, max_steps,
    early_stopping, stop_metric, lr_schedule, refit_epochs, refit_schedule, lr_drop_epochs, output_init,
    clip_grad_norm, standardize_expression, batching, pair_orders, num_threads :
        As in `spatiomol.models.mlp.MLP`; see `spatiomol.models.training`. ``batching``
        defaults to ``"region_blocks"`` here (the MLP's to ``"random"``): a batch touches
        ~2√B regions, so the encoder runs on far fewer regions per step.
    aug_prob, aug_style :
        Target-side augmentation, see `spatiomol.models.augment`.
    gene_order : {"tss", "as_given", "random", "mean_expression"}
        Gene order before tokenisation, applied with `spatiomol.data.genome.order_genes`
        computed on the *training* regions (so ``mean_expression`` does not see test
        regions); the fitted order is kept in ``genes_`` and reused at prediction.
    coord_scale_mm : float
        [CLS] coordinates are MNI mm divided by this.
    device : {"auto", "cpu", "cuda"}
    seed : int
    verbose : bool

    Attributes
    ----------
    network_ : SMTNetwork
    genes_ : tuple of str
        Genes in token order.
    token_size_ : int
        Genes per token ``k`` (``token_encoder_dim`` resolved).
    n_tokens_ : int
        Gene tokens ``ℓ``.
    n_padding_genes_ : int
        Zero-padded positions in the last token.
    embedding_dim_ : int
        Region embedding size ``p``.
    token_labels_ : list of str
        "[CLS]" (if used) then "FIRSTGENE..LASTGENE" per token.
    history_, notes_, n_parameters_ :
        See `spatiomol.models.training.NeuralConnectivityModel`.
    """

    config_name = "smt"

    own_parameters = {
        "use_cls": Hyperparameter(False, ("boolean",)),
        "token_encoder_dim": Hyperparameter(60, (Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}))),
        "d_model": Hyperparameter(128, (Interval(Integral, 1, None, closed="left"),)),
        "encoder_output_dim": Hyperparameter(10, (Interval(Integral, 1, None, closed="left"),)),
        "use_alibi": Hyperparameter(True, ("boolean",)),
        "alibi_slopes": Hyperparameter("press", (StrOptions(set(ALIBI_SLOPES)),)),
        "norm_first": Hyperparameter(True, ("boolean",)),
        "position_embedding": Hyperparameter(False, ("boolean",)),
        "nhead": Hyperparameter(4, (Interval(Integral, 1, None, closed="left"),)),
        "num_layers": Hyperparameter(4, (Interval(Integral, 1, None, closed="left"),)),
        "deep_hidden_dims": Hyperparameter((512, 256, 128), (list, tuple)),
        "transformer_dropout": Hyperparameter(0.1, (Interval(Real, 0, 1, closed="left"),)),
        "gene_order": Hyperparameter("tss", (StrOptions(set(GENE_ORDERS)),)),
    }
    training_defaults = {
        "dropout_rate": 0.2,
        "hidden_norm": "layer",
        "batch_size": 512,
        "epochs": 90,
        "batching": "region_blocks",
        "aug_prob": 0.3,
    }

    # ---------------------------------------------------------- building
    def _check_combinations(self) -> None:
        if int(self.d_model) % int(self.nhead):
            raise ValueError(f"d_model ({self.d_model}) must be divisible by nhead ({self.nhead})")

    def _build_network(self, n_genes: int) -> nn.Module:
        k = resolve_token_size(self.token_encoder_dim, n_genes)
        encoder = SMTEncoder(
            token_size=k,
            n_tokens=math.ceil(n_genes / k),
            d_model=int(self.d_model),
            n_heads=int(self.nhead),
            n_layers=int(self.num_layers),
            d_out=int(self.encoder_output_dim),
            dropout=float(self.transformer_dropout),
            use_alibi=bool(self.use_alibi),
            use_cls=bool(self.use_cls),
            alibi_kind=self.alibi_slopes,
            norm_first=bool(self.norm_first),
            position_embedding=bool(self.position_embedding),
        )
        return SMTNetwork(encoder, self.deep_hidden_dims, float(self.dropout_rate), self.hidden_norm)

    def _after_build(self, n_genes: int) -> list[str]:
        k = resolve_token_size(self.token_encoder_dim, n_genes)
        self.token_size_ = k
        self.n_tokens_ = math.ceil(n_genes / k)
        self.n_padding_genes_ = self.n_tokens_ * k - n_genes
        self.embedding_dim_ = self.network_.encoder.embedding_dim
        genes = list(self.genes_)
        labels = [f"{genes[t * k]}..{genes[min((t + 1) * k, n_genes) - 1]}" for t in range(self.n_tokens_)]
        self.token_labels_ = (["[CLS]"] if self.use_cls else []) + labels
        notes = [
            f"{n_genes} genes → {self.n_tokens_} tokens of {k} genes"
            + (" (token_encoder_dim='auto')" if self.token_encoder_dim == "auto" else "")
        ]
        if self.n_padding_genes_:
            notes.append(f"last token holds {k - self.n_padding_genes_} genes, zero-padded by {self.n_padding_genes_}")
        return notes

    def _region_tensors(self, brain: Brain) -> dict[str, torch.Tensor]:
        tokens, _ = tokenize(brain.X, resolve_token_size(self.token_encoder_dim, brain.n_genes))
        out = {"tokens": torch.from_numpy(tokens)}
        if self.use_cls:
            out["coords"] = torch.from_numpy((brain.coords / float(self.coord_scale_mm)).astype(np.float32))
        return out

    def _prepare_brain(self, brain: Brain, train: np.ndarray) -> tuple[Brain, list[str]]:
        if self.gene_order == "as_given":
            return brain, ["genes tokenised in the brain's given order (gene_order='as_given')"]
        ordered = order_genes(brain.subset_regions(train), self.gene_order, seed=int(self.seed))
        report = ordered.provenance.get("gene_order", "")
        return brain.select_genes(list(ordered.genes)), [
            f"genes ordered by {self.gene_order!r} on the training regions: {report}"
        ]

    # ------------------------------------------------------ interpretability
    def attribution_inputs(self) -> tuple[str, tuple[str, ...]]:
        return "tokens", ("coords",) if self.use_cls else ()  # zero padding after the genes

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise ValueError("SMT is not fitted; call fit(brain, train_regions) first")

    def region_embeddings(self, brain: Brain, regions: np.ndarray | None = None) -> np.ndarray:
        """Region embeddings ``z`` (eval mode), e.g. for UMAP.

        Returns
        -------
        (len(regions), embedding_dim_) float64 array (all regions when ``regions`` is None).
        """
        self._check_fitted()
        brain = self._align_genes(brain)
        regions = np.arange(brain.n_regions) if regions is None else np.asarray(regions, dtype=np.int64)
        self.network_.eval()
        with torch.no_grad(), self._torch_context():
            z = self.network_.encode_regions(self._device_tensors(brain), torch.as_tensor(regions, device=self.device_))
        return z.cpu().double().numpy()

    def attention_maps(
        self,
        brain: Brain,
        regions: np.ndarray | None = None,
        group_by: str | None = "network",
        chunk_size: int = 64,
    ) -> dict[str, Any]:
        """Final-layer attention, averaged over regions (and heads) — App. A.7.

        Parameters
        ----------
        brain : Brain
        regions : int array, optional
            Regions to pass through the encoder (all when None).
        group_by : str or None
            Column of ``brain.regions`` defining groups (default ``"network"``).
        chunk_size : int
            Regions encoded at a time.

        Returns
        -------
        dict with
            ``"global"``: (L, L) mean over heads and regions;
            ``"per_head"``: (h, L, L) mean over regions;
            ``"groups"``: {group: (L, L) mean over heads and that group's regions};
            ``"token_labels"``: list of L labels ([CLS] first when used);
            ``"n_regions"``: number of regions averaged.
            Rows index queries, columns keys; every row sums to 1.
        """
        self._check_fitted()
        brain = self._align_genes(brain)
        regions = np.arange(brain.n_regions) if regions is None else np.asarray(regions, dtype=np.int64)
        tensors = self._device_tensors(brain)
        coords = tensors.get("coords")
        self.network_.eval()
        per_region_chunks = []
        with torch.no_grad(), self._torch_context():
            for s in range(0, len(regions), chunk_size):
                r = torch.as_tensor(regions[s : s + chunk_size], device=self.device_)
                a = self.network_.encoder.final_layer_attention(
                    tensors["tokens"][r], None if coords is None else coords[r]
                )
                per_region_chunks.append(a.double().cpu())
        per_region = torch.cat(per_region_chunks).numpy()  # (R, h, L, L)
        out: dict[str, Any] = {
            "per_head": per_region.mean(axis=0),
            "global": per_region.mean(axis=(0, 1)),
            "token_labels": list(self.token_labels_),
            "n_regions": int(len(regions)),
            "groups": {},
        }
        if group_by is not None:
            labels = brain.regions[group_by].to_numpy()[regions]
            for name in dict.fromkeys(labels):  # first-appearance order
                out["groups"][str(name)] = per_region[labels == name].mean(axis=(0, 1))
        return out
