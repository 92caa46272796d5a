"""Breakdown of results by resource class, seen / unseen in fine-tuning and XLM-R pre-training."""

import pandas as pd
import pytest

from hybrid_sweep.data.languages import flores_code, in_xlmr, is_seen, resource_class
from hybrid_sweep.evaluation.language_groups import language_groups


def test_labels_resolve_through_the_table():
    assert [flores_code(x) for x in ("en", "eng_Latn", "zh_cn", "ZHO_HANS", "yor", "qla")] == [
        "eng_Latn", "eng_Latn", "zho_Hans", "zho_Hans", "yor_Latn", None]
    assert [resource_class(x) for x in ("en", "de", "el", "hi", "sw", "yo", "ary_Arab", "qla")] == [
        "5", "5", "3", "4", "2", "2", "unknown", "unknown"]
    assert (in_xlmr("el"), in_xlmr("yor_Latn"), in_xlmr("qla")) == ("yes", "no", "unknown")
    assert is_seen("deu_Latn", ["de", "en"]) and not is_seen("el", ["de", "en"]) and not is_seen("en", None)
    assert is_seen("qla", ["qla"])  # labels outside the table compare as strings


def test_each_language_counts_once_in_its_groups():
    rows = [("cross", "en", "de", 0.9), ("cross", "en", "yo", 0.5), ("cross", "de", "en", 0.8),
            ("cross", "de", "yo", 0.6), ("cross", "yo", "en", 0.2), ("cross", "yo", "de", 0.4),
            ("cross", "avg", "avg", 0.567)]
    metrics = pd.DataFrame([("b", s, q, d, "map", v, 10, 0, "full") for s, q, d, v in rows],
                           columns=["benchmark", "setting", "query_lang", "doc_lang", "metric", "value",
                                    "n_queries", "n_skipped", "depth"])
    g = language_groups(metrics, train_languages=["en", "yo"]).set_index(["grouping", "group"])
    assert g.loc[("resource_class", "5"), "value"] == pytest.approx((0.7 + 0.7) / 2)
    assert g.loc[("resource_class", "5"), "n_langs"] == 2 and g.loc[("resource_class", "5"), "languages"] == "de,en"
    assert g.loc[("resource_class", "2"), "value"] == pytest.approx(0.3)
    assert g.loc[("seen", "seen"), "value"] == pytest.approx((0.7 + 0.3) / 2)
    assert g.loc[("seen", "unseen"), "value"] == pytest.approx(0.7)
    assert g.loc[("xlmr_pretraining", "out"), "languages"] == "yo"
