"""Every point where the paper leaves CREATE open, as one table: the paper's words, the readings,
the config option that picks one, today's default and the evidence for it.

There is no public CREATE code (the paper's code link cannot be reached and it has no appendix of
hyperparameters). The authors' lab repository (github.com/fallnlove/btl_recsys) holds MRGSRec,
CREATE's predecessor from the same group, whose code reads several of these points its own way;
``predecessor`` marks its reading, and ``PREDECESSOR`` bundles them as one set of overrides.
Read there (MRGSRec's ``src/`` and ``configs/*_mrgsrec.yaml``, Nov. 2025): the graph loss inside
each sequential batch on the batch's users and next items, a BPR averaged over the whole
catalogue, one LightGCN hop with L2-normalised hops and edge dropout at the model's dropout rate
(0.2 on ML-1M, 0.3-0.4 on the Amazon sets), the cross-entropy against the propagated item
embeddings, a LayerNorm on item + position embeddings, post-norm layers, truncated-normal 0.02
initialisation, every position's state contrasted with the user's graph embedding, plain Adam
(no weight decay; the lab's UltraGCN baseline uses AdamW with weight decay 1e-4) and gradient
clipping at 10.

``option`` is a dotted key of CREATE's parameters (``recbench.protocol.studies.apply_overrides`` applies
it: ``graph.LightGCN.hop_norm`` sets ``hop_norm`` in ``graph: {LightGCN: {...}}``); ``None``
where the reading is fixed rather than a switch. ``default`` is the reading both configs set
(config/config.yaml, config/paper.yaml); CREATE's ``Params`` keep the first reading built where
they differ (``sequential.init: scaled``, ``align_positions: last``, ``barlow_lambda: 0.005``),
so a config, not the code, carries each choice.

``evidence``: the readings report (results/readings.md) on real MovieLens-100K, one reading
flipped at a time from the earlier default (scaled init, last position, lambda 0.005), seed 0,
the default config's budget (25 joint epochs, patience 3), validation NDCG@10 in % in the
configured (unfiltered) protocol, in leave-one-out (943 validation users: the split that can
separate readings) and on the paper's temporal split (76 validation users). A reading is chosen
where leave-one-out validation prefers it and the temporal split does not prefer the other; the
test numbers are beside it, never the reason. The three chosen together were checked once more
at a longer budget (40 joint epochs, patience 8, leave-one-out): validation 6.21 against 5.42
for the earlier default (test 5.72 against 4.68, paired p 0.014 on test), SASRec 6.44 (test
5.32; CREATE - SASRec +0.40, p 0.42), the predecessor bundle 5.55 (test 4.93), alignment off
6.22 (test 5.90).
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_MEASURED = "not yet measured"


@dataclass(frozen=True)
class Alternative:
    value: object  # the option's value (for a fixed reading, a name)
    meaning: str  # one line
    predecessor: bool = False  # MRGSRec's reading


@dataclass(frozen=True)
class Reading:
    point: str  # the open point (several options may read one point)
    paper: str  # the paper's words
    section: str
    option: str | None  # dotted CREATE parameter path; None: not a switch
    alternatives: tuple[Alternative, ...]
    default: object
    evidence: str = NOT_MEASURED


def _alt(value, meaning, predecessor=False) -> Alternative:
    return Alternative(value, meaning, predecessor)


READINGS: tuple[Reading, ...] = (
    Reading(
        "graph schedule",
        "during the first N_warmup epochs, we train only the graph model. After that, ... we turn "
        "on the sequential model and train the whole model",
        "3.6", "graph_schedule",
        (_alt("edges", "a graph step is the graph's own: warm-up epochs pass over every edge, a "
                       "joint epoch interleaves edge chunks with the sequential batches"),
         _alt("sequential", "every step is a sequential batch; L_global on its users and their "
                            "next items (one pair per position), warm-up with L_global alone",
              True)),
        "edges",
        "ML-100K leave-one-out, validation NDCG@10 (943 users, seed 0, the default's budget): sequential 4.46 against the default's 5.42 (test 3.37 against 4.68); temporal split 1.07 against 1.13: kept `edges`"),
    Reading(
        "graph negatives",
        "L_BPR = - sum_u sum_{i in H_u} sum_{j not in H_u} ln sigma(s_i - s_j)",
        "3.4", "graph_negatives",
        (_alt("sampled", "the backbone's own negatives: LightGCN one uniform per positive, "
                         "UltraGCN negative_num"),
         _alt("catalog", "every j not in H_u, as a per-positive mean (MRGSRec averages over "
                         "the whole catalogue, H_u included)", True)),
        "sampled",
        'ML-100K LOO validation: catalog 4.55 against 5.42 (test 3.56 / 4.68); temporal 1.34 against 1.13 (76 validation users): kept `sampled`'),
    Reading(
        "LightGCN form",
        "LightGCN is a simplified Graph Convolution model, which omits operations such as "
        "self-connection, feature transformation, and nonlinear activations",
        "3.4", "graph.LightGCN.hop_norm",
        (_alt(False, "the hop outputs as they are (He et al.)"),
         _alt(True, "each hop's output L2-normalised per row before the layer mean", True)),
        False,
        'ML-100K LOO validation: 4.71 against 5.42 (test 4.11 / 4.68); temporal 1.83 against 1.13: kept `false` (the split with power decides)'),
    Reading(
        "LightGCN form", "(no word on dropout)", "3.4", "graph.LightGCN.edge_dropout",
        (_alt(0.0, "no edge dropout (He et al.'s default)"),
         _alt(0.2, "each edge dropped with p = 0.2 at every training propagation, kept entries "
                   "/ (1 - p) (MRGSRec: its dropout rate, 0.2 on ML-1M)", True)),
        0.0,
        'ML-100K LOO validation: 0.2 gives 4.64 against 5.42 (test 3.49 / 4.68): kept 0.0'),
    Reading(
        "LightGCN form", "(no number of layers given)", "3.4", "graph.LightGCN.n_layers",
        (_alt(3, "three hops (He et al.'s default)"),
         _alt(1, "one hop (MRGSRec on all four of its datasets)", True)),
        3,
        'ML-100K LOO validation: one hop 4.59 against 5.42 (test 3.22 / 4.68): kept 3'),
    Reading(
        "scoring table",
        "inference relies solely on the sequential backbone with enriched item embeddings",
        "3.4", "score_table",
        (_alt("raw", "CE and inference against the shared item table both encoders train"),
         _alt("propagated", "against the graph branch's propagated item embeddings (LightGCN's "
                            "layer mean; UltraGCN's are the table itself)", True)),
        "raw",
        'ML-100K LOO validation: propagated 4.81 against 5.42 (test 3.03 / 4.68): kept `raw`'),
    Reading(
        "sequential encoder input",
        "form position-aware item representations by additive composition",
        "3.2", "sequential.input_norm",
        (_alt(False, "item + position embeddings straight into the transformer"),
         _alt(True, "a LayerNorm on item + position embeddings before dropout", True)),
        False,
        'ML-100K LOO validation: 4.15 against 5.42 (test 2.98 / 4.68): kept `false`'),
    Reading(
        "sequential encoder input", "(SASRec encoder; no layer form given)", "3.3",
        "sequential.norm_first",
        (_alt(True, "pre-norm layers and a final LayerNorm"),
         _alt(False, "post-norm layers (torch's default), no final LayerNorm", True)),
        True,
        'ML-100K LOO validation: post-norm 4.02 against 5.42 (test 3.08 / 4.68): kept pre-norm'),
    Reading(
        "sequential encoder input", "(no initialisation given)", "3.2", "sequential.init",
        (_alt("scaled", "item and position tables normal with std d^-1/2, layers at torch's "
                        "defaults; the graph's users at the same std"),
         _alt("trunc_normal", "every weight truncated normal, std 0.02 at +-2 std; the graph's "
                              "users at the item table's std", True)),
        "trunc_normal",
        'ML-100K LOO validation: trunc_normal 5.98 against 5.42, the largest gain of any reading (test 5.80 / 4.68); temporal 1.32 against 1.13: CHOSEN'),
    Reading(
        "alignment pairs",
        "Let h_u denote the local representation from the sequential encoder and e^u the "
        "global representation from the graph encoder",
        "3.5", "align_positions",
        (_alt("last", "h_u = the state that scores the next item, one pair per user"),
         _alt("all", "every state the local loss scores (SASRec: every real position; "
                     "BERT4Rec: every masked position) paired with its user's e_u", True)),
        "all",
        'ML-100K LOO validation: all 5.85 against 5.42 (test 4.95 / 4.68); temporal 1.17 against 1.13: CHOSEN'),
    Reading(
        "optimizer", "(no optimiser settings given)", "4", "weight_decay",
        (_alt(0.0, "AdamW without decay (MRGSRec: plain Adam)", True),
         _alt(1e-4, "decoupled decay 1e-4 on every parameter (the lab's UltraGCN baseline)")),
        0.0,
        'ML-100K LOO validation: 1e-4 gives 5.42, as without decay (test 4.68 both): kept 0.0'),
    Reading(
        "optimizer", "(no optimiser settings given)", "4", "max_grad_norm",
        (_alt(None, "no gradient clipping"),
         _alt(10.0, "the global gradient norm clipped at 10", True)),
        None,
        'ML-100K LOO: clipping at 10 gives the same run bit for bit (the global norm never reaches 10): kept none'),
    Reading(
        "Barlow lambda",
        "lambda > 0 controls the trade-off [between invariance and redundancy reduction]",
        "3.5", "barlow_lambda",
        (_alt(5e-3, "Zbontar et al.'s value (for d = 8192): at d = 64 the off-diagonal term is "
                    "about 0.3 % of the loss at initialisation"),
         _alt(1 / 64, "1/d at d = 64, so that decorrelation weighs in")),
        1 / 64,
        'ML-100K LOO validation: 1/d 5.49 against 5.42 (test 4.52 / 4.68); temporal 1.13 both: CHOSEN (validation, and Section 3.5 calls decorrelation important)'),
    Reading(
        "Eq. 3 scale",
        "L_BT = sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2",
        "3.5", "barlow_scale",
        (_alt("sum", "Eq. 3 as printed: about d for unrelated views"),
         _alt("mean", "Eq. 3 / d, in [0, 1] for unrelated views whatever d")),
        "mean",
        'ML-100K LOO validation: sum 3.05 against mean 5.42 (test 1.96 / 4.68); temporal 0.66 against 1.13: kept `mean`'),
    Reading(
        "epoch budget",
        "during the first N_warmup epochs, we train only the graph model",
        "3.6", None,
        (_alt("joint", "`epochs` counts joint epochs, the warm-up comes before them: CREATE's "
                       "sequential budget equals SASRec's at equal `epochs` (built)"),
         _alt("total", "`epochs` counts both phases: each warm-up epoch costs a sequential one "
                       "(before this table; not a switch, it biases the comparison)")),
        "joint",
        "not chosen by data: at `total`, Figure 4's 10 warm-up epochs left 15 of SASRec's 25 "
        "sequential epochs, so that point measured the budget, not the warm-up"),
)

#: MRGSRec's readings as overrides of CREATE's parameters (its alignment is InfoNCE; CREATE's
#: configured alignment is kept, ``align_positions: all`` works with both)
PREDECESSOR: dict[str, object] = {
    r.option: next(a.value for a in r.alternatives if a.predecessor)
    for r in READINGS if r.option is not None and any(a.predecessor for a in r.alternatives)
}


def options() -> tuple[str, ...]:
    """The switchable options, in table order."""
    return tuple(r.option for r in READINGS if r.option is not None)
