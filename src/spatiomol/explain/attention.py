"""SMT attention along the genome (paper App. A.7).

`spatiomol.models.smt.SMT.attention_maps` gives the final layer's attention averaged over
heads and regions, (L, L) with queries in rows and keys in columns (every row sums to
1), for all regions and per network. Averaged over the query rows it becomes the share of
attention each token *receives* (L values summing to 1), which is drawn along the genome:
each gene token is a bin of ``token_encoder_dim`` consecutive genes in the model's fitted
order (TSS order for ``gene_order="tss"``), placed by the chromosome and start (bp,
GRCh38) of its first gene from the bundled GENCODE v27 table.
"""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spatiomol.data.brain import Brain  # noqa: E402
from spatiomol.models.smt import SMT  # noqa: E402

CLS_LABEL = "[CLS]"


def gene_position_table(mirror=None) -> pd.DataFrame:
    """The bundled gene-position table (GENCODE v27, GRCh38): ``symbol, chrom, start, end``."""
    from spatiomol.data.bundled_files import fetch_file, genome_key
    from spatiomol.data.genome import read_gene_positions

    return read_gene_positions(fetch_file(genome_key(), mirror=mirror))


def token_positions(
    genes: list[str] | tuple[str, ...], token_size: int, with_cls: bool, table: pd.DataFrame | None
) -> pd.DataFrame:
    """Where each SMT token sits on the genome.

    Parameters
    ----------
    genes : sequence of str
        Genes in token order (``SMT.genes_``).
    token_size : int
        Genes per token ``k``.
    with_cls : bool
        Whether token 0 is the [CLS] coordinate token.
    table : DataFrame or None
        ``symbol, chrom, start`` (`gene_position_table`); None when unavailable.

    Returns
    -------
    DataFrame, one row per token, columns ``token`` (0..L-1), ``label``, ``first_gene``,
    ``last_gene``, ``n_genes``, ``chromosome`` (of the first gene found in the table,
    ``"?"`` when none is), ``chromosomes`` (every chromosome of its genes, "|"-joined)
    and ``start_bp`` (start of that first placed gene; NaN when none).
    """
    where = {}
    if table is not None:
        sel = table[table["symbol"].isin(set(genes))]
        where = dict(zip(sel["symbol"], zip(sel["chrom"], sel["start"])))
    rows = []
    if with_cls:
        rows.append(
            {
                "label": CLS_LABEL,
                "first_gene": "",
                "last_gene": "",
                "n_genes": 0,
                "chromosome": CLS_LABEL,
                "chromosomes": CLS_LABEL,
                "start_bp": np.nan,
            }
        )
    for s in range(0, len(genes), token_size):
        members = list(genes[s : s + token_size])
        placed = [where[g] for g in members if g in where]
        chroms = list(dict.fromkeys(c for c, _ in placed))
        rows.append(
            {
                "label": f"{members[0]}..{members[-1]}",
                "first_gene": members[0],
                "last_gene": members[-1],
                "n_genes": len(members),
                "chromosome": chroms[0] if chroms else "?",
                "chromosomes": "|".join(chroms) if chroms else "?",
                "start_bp": float(placed[0][1]) if placed else np.nan,
            }
        )
    out = pd.DataFrame(rows)
    out.insert(0, "token", np.arange(len(out)))
    return out


def attention_profiles(
    model: SMT, brain: Brain, table: pd.DataFrame | None, group_by: str = "network"
) -> tuple[pd.DataFrame, np.ndarray]:
    """Attention received per token, globally and per ``group_by`` group, with token positions.

    Returns
    -------
    profiles : DataFrame
        `token_positions` plus a column ``attention_all`` and one ``attention_<group>``
        per group: the final-layer attention each token receives, averaged over heads,
        regions (of the group) and query tokens (sums to 1 over tokens).
    global_map : (L, L) array
        Final-layer attention averaged over heads and all regions.
    """
    if not hasattr(model, "attention_maps"):
        raise ValueError(f"attention along the genome needs a model with attention maps, got {type(model).__name__}")
    maps = model.attention_maps(brain, group_by=group_by)
    profiles = token_positions(model.genes_, int(model.token_encoder_dim), bool(model.use_cls), table)
    if len(profiles) != maps["global"].shape[0]:
        raise ValueError(f"SMT has {maps['global'].shape[0]} tokens but its genes make {len(profiles)}")
    profiles["attention_all"] = maps["global"].mean(axis=0)
    for name, matrix in maps["groups"].items():
        profiles[f"attention_{name}"] = matrix.mean(axis=0)
    return profiles, maps["global"]


def draw_attention_along_genome(profiles: pd.DataFrame, global_map: np.ndarray, title: str) -> plt.Figure:
    """Attention received per token along the genome (all regions and per network) and the (L, L) map."""
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [1, 1.4]}, constrained_layout=True
    )
    x = profiles["token"].to_numpy()
    # shade alternate chromosomes and label each run of tokens
    chrom = profiles["chromosome"].to_numpy()
    starts = [0] + [k for k in range(1, len(chrom)) if chrom[k] != chrom[k - 1]]
    for n, s in enumerate(starts):
        e = starts[n + 1] if n + 1 < len(starts) else len(chrom)
        if n % 2:
            top.axvspan(s - 0.5, e - 0.5, color="0.92", zorder=0)
        top.text(
            (s + e - 1) / 2,
            1.0,
            str(chrom[s]).removeprefix("chr"),
            transform=top.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    groups = [c for c in profiles.columns if c.startswith("attention_") and c != "attention_all"]
    for column in groups:
        top.plot(x, profiles[column], lw=0.9, alpha=0.8, label=column.removeprefix("attention_"))
    top.plot(x, profiles["attention_all"], color="black", lw=2, label="all regions")
    top.set_xlim(-0.5, len(x) - 0.5)
    top.set_xlabel("token (genes in fitted order; chromosome of each run of tokens above)")
    top.set_ylabel("attention received (mean over heads, regions, queries)")
    top.legend(fontsize=7, ncol=5, loc="upper right")
    image = bottom.imshow(global_map, cmap="viridis", interpolation="nearest", aspect="auto")
    bottom.set_xlabel("key token")
    bottom.set_ylabel("query token")
    bottom.set_title("final-layer attention, mean over heads and regions", fontsize=10)
    fig.colorbar(image, ax=bottom, shrink=0.8, label="attention weight")
    fig.suptitle(textwrap.fill(title, 120), fontsize=11)
    return fig
