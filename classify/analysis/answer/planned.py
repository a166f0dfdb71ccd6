"""The answer to the experiment's questions: a small, pre-declared family of planned comparisons.

Four questions, each a family of its own, Holm-adjusted within the family (never over all cell
pairs, where 95 cells give 4,465 pairs and hide every real difference):

* **(a) fusion**: does fusion beat each single modality? The best cell of every multi-store
  feature set against the best cell of each single-store feature set it contains, and, per
  classifier, the best fused cell of that classifier against the same classifier (and sampler)
  on each single store.
* **(b) classifiers**: which classifiers are best, which are practically equivalent? Within the
  feature set of the best cell, the best cell against the best cell of every other classifier.
* **(c) blocks**: which block matters? The best fused cell against the same cell with one block
  left out (leave-one-out partners of the block-subset ablation,
  :func:`classify.analysis.ablation.block_subsets.partners`).
* **(d) resampling**: does resampling help? The best cell of each feature set against its twin
  without resampling (sampler ``none``); unanswerable when the experiment has no such twins.

Every comparison is ``A - B`` over the splits both cells share: the Nadeau-Bengio corrected
t-test gives the p-value and the 95 % CI (``mean ± t(0.975, J-1) sqrt((1/J + n2/n1) var)``),
the Bayesian correlated t-test the probability that ``|A - B| <= ROPE`` (P(equivalent)). The
verdict, for A: ``equivalent`` when P(equivalent) reaches the decision probability, else
``better``/``worse`` when the Holm-adjusted p is below alpha, else ``undecided``. The "best"
cells are picked by their mean on the same splits, so an A chosen as best is slightly
favoured; the equivalence verdict, not the sign, is what to read from (b).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from classify.analysis.ablation.block_subsets import full_cells, partners
from classify.analysis.answer.names import data_words, reader_names
from classify.analysis.stats import (
    DECISION_PROBABILITY,
    DEFAULT_ROPE,
    bayes_correlated_ttest,
    holm,
    nadeau_bengio,
)
from classify.results.metrics import higher_is_better
from classify.results.types import BenchmarkResult, CellResult

#: The columns of ``tables/answer.csv``.
ANSWER_COLUMNS = ("question", "comparison", "difference", "ci_low", "ci_high", "p_holm",
                  "p_rope", "verdict")
#: The questions, keyed as in the table's ``question`` column.
QUESTIONS: Mapping[str, str] = {
    "a": "Does fusion beat each single modality?",
    "b": "Which classifiers are best, and which are practically equivalent to the best?",
    "c": "Which block matters (leave-one-out)?",
    "d": "Does resampling help?",
}
#: Samplers that do not resample (the "without resampling" side of question d).
NO_RESAMPLING = ("none",)


@dataclass(frozen=True)
class Answer:
    """The planned comparisons of a benchmark and one plain sentence per question.

    Attributes:
        metric, rope, alpha, decision_probability, test_train_ratio: the question asked.
        table: one row per comparison: :data:`ANSWER_COLUMNS` plus ``a``, ``b`` (cell labels),
            ``scope`` (``best cells``/``per classifier``/...), ``mean_a``, ``mean_b``, ``p``
            (unadjusted) and ``n_splits``; ``question`` is ``a``..``d``.
        sentences: ``(question key, sentence)`` for every question, answerable or not.
        names: cell label -> name for readers (:func:`classify.analysis.answer.names.reader_names`).
        best: label of the best cell on ``metric`` (None without cells).
    """

    metric: str
    rope: float
    alpha: float
    decision_probability: float
    test_train_ratio: float
    table: pd.DataFrame = field(hash=False)
    sentences: tuple[tuple[str, str], ...] = ()
    names: Mapping[str, str] = field(default_factory=dict, hash=False)
    best: str | None = None

    def csv_frame(self) -> pd.DataFrame:
        """The ``tables/answer.csv`` frame (:data:`ANSWER_COLUMNS`)."""
        return self.table.loc[:, list(ANSWER_COLUMNS)]


def _mean(cell: CellResult, metric: str) -> float:
    return float(cell.metric_values(metric).mean())


def _best(cells: Sequence[CellResult], metric: str) -> CellResult:
    sign = 1.0 if higher_is_better(metric) else -1.0
    return max(cells, key=lambda c: np.nan_to_num(sign * _mean(c, metric), nan=-np.inf))


def paired(a: CellResult, b: CellResult, metric: str, ratio: float, rope: float
           ) -> dict[str, float]:
    """``A - B`` on the shared splits: difference, corrected 95 % CI, p and P(equivalent)."""
    both = pd.concat([a.metric_values(metric), b.metric_values(metric)], axis=1,
                     keys=["a", "b"]).dropna()
    va, vb = both["a"].to_numpy(float), both["b"].to_numpy(float)
    d = va - vb
    j = len(d)
    out = {"mean_a": float(va.mean()) if j else np.nan, "mean_b": float(vb.mean()) if j else np.nan,
           "difference": float(d.mean()) if j else np.nan, "n_splits": j}
    if j < 2:
        return {**out, "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "p_rope": np.nan}
    half = float(sps.t.ppf(0.975, j - 1)) * float(np.sqrt((1.0 / j + ratio) * d.var(ddof=1)))
    _, _, p = nadeau_bengio(va, vb, ratio)
    _, p_eq, _ = bayes_correlated_ttest(va, vb, ratio, rope, higher_is_better(metric))
    return {**out, "ci_low": out["difference"] - half, "ci_high": out["difference"] + half,
            "p": p, "p_rope": p_eq}


def verdict(difference: float, p_holm: float, p_rope: float, *, alpha: float,
            decision_probability: float, higher_better: bool = True) -> str:
    """``equivalent``, ``better``, ``worse`` (for A) or ``undecided`` (see the module doc)."""
    if np.isfinite(p_rope) and p_rope >= decision_probability:
        return "equivalent"
    if np.isfinite(p_holm) and p_holm < alpha:
        return "better" if (difference > 0) == higher_better else "worse"
    return "undecided"


def _fusion_pairs(cells: Sequence[CellResult], metric: str
                  ) -> list[tuple[str, CellResult, CellResult]]:
    groups: dict[str, list[CellResult]] = {}
    for c in cells:
        groups.setdefault(c.spec.feature_set, []).append(c)
    multi = {k: v for k, v in groups.items() if len(v[0].spec.stores) > 1}
    single = {k: v for k, v in groups.items() if len(v[0].spec.stores) == 1}
    out = []
    for fused in multi.values():
        stores = set(fused[0].spec.stores)
        mates = [v for v in single.values() if v[0].spec.stores[0] in stores]
        top = _best(fused, metric)
        out += [("best cells", top, _best(m, metric)) for m in mates]
        for clf in dict.fromkeys(c.spec.classifier for c in fused):
            a = _best([c for c in fused if c.spec.classifier == clf], metric)
            for m in mates:
                twins = [c for c in m if c.spec.classifier == clf and c.spec.sampler == a.spec.sampler]
                if twins:
                    out.append(("per classifier", a, _best(twins, metric)))
    return out


def _classifier_pairs(cells: Sequence[CellResult], best: CellResult, metric: str
                      ) -> list[tuple[str, CellResult, CellResult]]:
    same = [c for c in cells if c.spec.feature_set == best.spec.feature_set]
    out = []
    for clf in dict.fromkeys(c.spec.classifier for c in same):
        if clf != best.spec.classifier:
            out.append(("best feature set", best,
                        _best([c for c in same if c.spec.classifier == clf], metric)))
    return out


def _block_pairs(cells: Sequence[CellResult], metric: str
                 ) -> list[tuple[str, CellResult, CellResult]]:
    fulls = full_cells(cells)
    if not fulls:
        return []
    top = _best(fulls, metric)
    n = len(top.spec.stores)
    return [("best fused cell", top, sub) for sub in partners(top, cells)
            if len(sub.spec.stores) == n - 1]


def _resampling_pairs(cells: Sequence[CellResult], metric: str
                      ) -> list[tuple[str, CellResult, CellResult]]:
    out = []
    for fs in dict.fromkeys(c.spec.feature_set for c in cells):
        members = [c for c in cells if c.spec.feature_set == fs]
        top = _best(members, metric)
        twins = [c for c in members if c is not top and c.spec.fusion == top.spec.fusion
                 and c.spec.classifier == top.spec.classifier
                 and ("tuning" in c.spec.params) == ("tuning" in top.spec.params)]
        if top.spec.sampler in NO_RESAMPLING:
            out += [("best cell per feature set", t, top) for t in twins
                    if t.spec.sampler not in NO_RESAMPLING]
        else:
            out += [("best cell per feature set", top, t) for t in twins
                    if t.spec.sampler in NO_RESAMPLING]
    return out


def answer_questions(benchmark: BenchmarkResult, metric: str = "roc_auc", *,
                     rope: float = DEFAULT_ROPE, alpha: float = 0.05,
                     decision_probability: float = DECISION_PROBABILITY) -> Answer:
    """The planned comparisons of ``benchmark`` on ``metric`` and one sentence per question."""
    cells = list(benchmark.cells)
    ratio = benchmark.split.test_train_ratio if benchmark.split is not None else float("nan")
    names = reader_names(cells) if cells else {}
    hib = higher_is_better(metric)
    best = _best(cells, metric) if cells else None
    families = {"a": _fusion_pairs(cells, metric),
                "b": _classifier_pairs(cells, best, metric) if best is not None else [],
                "c": _block_pairs(cells, metric),
                "d": _resampling_pairs(cells, metric)}
    rows = []
    for q, pairs in families.items():
        seen: set[tuple[str, str]] = set()
        block = []
        for scope, a, b in pairs:
            if (a.label, b.label) in seen:  # the best cells are often also a per-classifier pair
                continue
            seen.add((a.label, b.label))
            block.append({"question": q, "scope": scope, "a": a.label, "b": b.label,
                          "comparison": f"{names[a.label]} vs {names[b.label]}",
                          **paired(a, b, metric, ratio, rope)})
        for r, p_holm in zip(block, holm([r["p"] for r in block]), strict=True):
            r["p_holm"] = float(p_holm)
            r["verdict"] = verdict(r["difference"], r["p_holm"], r["p_rope"], alpha=alpha,
                                   decision_probability=decision_probability, higher_better=hib)
        rows += block
    columns = [*ANSWER_COLUMNS, "a", "b", "scope", "mean_a", "mean_b", "p", "n_splits"]
    table = pd.DataFrame(rows, columns=columns)
    result = Answer(metric=metric, rope=float(rope), alpha=alpha,
                    decision_probability=float(decision_probability), test_train_ratio=ratio,
                    table=table, names=names, best=best.label if best is not None else None)
    sentences = tuple((q, _sentence(q, result, cells)) for q in QUESTIONS)
    return Answer(**{**result.__dict__, "sentences": sentences})


def _effect(r: Mapping[str, object], metric_title: str) -> str:
    return (f"{float(r['difference']):+.3f} {metric_title} (95 % CI {float(r['ci_low']):+.3f} to "
            f"{float(r['ci_high']):+.3f}, Holm p {_p(float(r['p_holm']))}, "
            f"P(equivalent) {float(r['p_rope']):.2f})")


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


_VERB = {"better": "beats", "worse": "is worse than", "equivalent": "is practically equivalent to",
         "undecided": "is not distinguishable from (undecided)"}


def _sentence(q: str, ans: Answer, cells: Sequence[CellResult]) -> str:
    t = ans.table[ans.table["question"] == q]
    title = ans.metric.replace("_", " ").upper() if ans.metric in ("roc_auc", "pr_auc", "mcc") \
        else ans.metric.replace("_", " ")
    n = ans.names
    if q == "a":
        if t.empty:
            return ("Not asked: the experiment needs a fused feature set and single-modality "
                    "feature sets of the same stores.")
        parts = [f"{n[r['a']]} {_VERB[r['verdict']]} {_data(cells, r['b'])} alone "
                 f"({n[r['b']]}): {_effect(r, title)}"
                 for _, r in t[t["scope"] == "best cells"].iterrows()]
        per = t[t["scope"] == "per classifier"]
        if len(per):
            counts = []
            for b_data in dict.fromkeys(_data(cells, lab) for lab in per["b"]):
                sub = per[[_data(cells, lab) == b_data for lab in per["b"]]]
                tally = sub["verdict"].value_counts()
                counts.append(f"vs {b_data}: " + ", ".join(
                    f"{tally[v]} {v}" for v in ("better", "equivalent", "undecided", "worse")
                    if v in tally) + f" of {len(sub)}")
            parts.append("per classifier, fusion " + "; ".join(counts))
        return "; ".join(parts) + "."
    if q == "b":
        if t.empty:
            return "Not asked: one classifier only."
        lead = (f"{n[ans.best]} is best ({float(t['mean_a'].iloc[0]):.3f} {title})"
                if ans.best else "")
        eq = [n[b] for b, v in zip(t["b"], t["verdict"], strict=True) if v == "equivalent"]
        und = [n[b] for b, v in zip(t["b"], t["verdict"], strict=True) if v == "undecided"]
        worse = int((t["verdict"] == "better").sum())
        return (lead + "; practically equivalent (|difference| <= " + f"{ans.rope:g}): "
                + (" / ".join(eq) or "none") + (f"; undecided: {' / '.join(und)}" if und else "")
                + f"; decided worse: {worse} of {len(t)} other classifiers.")
    if q == "c":
        if t.empty:
            return "Not asked: no fused cell has leave-one-out partner cells."
        parts = []
        for _, r in t.iterrows():
            a_stores = set(_cell(cells, r["a"]).spec.stores)
            dropped = a_stores - set(_cell(cells, r["b"]).spec.stores)
            word = {"better": "matters", "worse": "hurts", "equivalent": "adds nothing practical",
                    "undecided": "undecided"}[r["verdict"]]
            parts.append(f"dropping {', '.join(sorted(_store_words(cells, dropped)))}: {word}, "
                         f"full - without {_effect(r, title)}")
        return f"In {n[t['a'].iloc[0]]}: " + "; ".join(parts) + "."
    if t.empty:
        return ("Not asked: no cell has a twin without resampling (add \"none\" to samplers "
                "to test it).")
    tally = t["verdict"].value_counts()
    return ("Resampled vs not resampled, best cell of each feature set: "
            + ", ".join(f"{tally[v]} {v}" for v in ("better", "equivalent", "undecided", "worse")
                        if v in tally)
            + f" of {len(t)}; e.g. {t['comparison'].iloc[0]}: {_effect(t.iloc[0], title)}.")


def _cell(cells: Sequence[CellResult], label: str) -> CellResult:
    return next(c for c in cells if c.label == label)


def _data(cells: Sequence[CellResult], label: str) -> str:
    return data_words(_cell(cells, label))


def _store_words(cells: Sequence[CellResult], stores: set[str]) -> list[str]:
    from classify.analysis.answer.names import MODALITY_WORDS

    out = []
    for s in stores:
        mod = next((m for c in cells for k, m in zip(c.spec.stores, c.spec.modalities,
                                                      strict=True) if k == s), s)
        out.append(f"{MODALITY_WORDS.get(mod, mod)} ({s})")
    return out
