"""With labels read off the report, every run states the text ceiling caveat for cells that embed
the report's findings or impression, whatever their scores (issue 22 item 3)."""

from __future__ import annotations

import dataclasses

from classify.analysis.run_warnings import collect_warnings
from classify.run import leakage
from tests.classify.conftest import make_benchmark, make_cell


def _text(auc: float, store: str = "minilm"):  # noqa: ANN202
    return make_cell("logistic", fusion="single", feature_set="text", stores=(store,),
                     modalities=("text",), seed=5, overrides={"roc_auc": auc})


def test_caveat_is_stated_below_the_098_ceiling_for_report_labels():
    cells = (make_cell("logistic", fusion="single", feature_set="image", stores=("densenet",),
                       modalities=("image",), seed=1), _text(0.80),
             make_cell("knn", seed=2))  # fused image + minilm: embeds the read too
    assert leakage.ceiling_warning(cells, "csv:report") is None  # no score passes 0.98
    caveat = leakage.report_text_caveat(cells, "csv:report")
    assert caveat is not None and "2 cell(s) embed" in caveat and "text/single" in caveat
    assert "image/single" not in caveat


def test_no_caveat_for_external_labels_or_pre_read_text_only():
    assert leakage.report_text_caveat((_text(0.99),), "external") is None
    assert leakage.report_text_caveat((_text(0.99, "minilm@indication"),), "csv:report") is None


def test_the_report_warnings_carry_the_caveat_once():
    bench = make_benchmark(cells=(_text(0.8), make_cell("knn", seed=2)))
    bench = dataclasses.replace(bench, label_source="csv:report", warnings=())
    texts = [w.text for w in collect_warnings(bench) if w.category == "leakage"]
    assert sum("label-source caveat" in t for t in texts) == 1
