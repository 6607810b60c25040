"""The match decision per face-size band and the threshold recommendation: pure functions, no models."""
from __future__ import annotations

import numpy as np
import pytest

from vision.decision import Thresholds, band_of, rate, recommend

TABLE = {"yunet_sface": {"terminal": (0.30, 0.47), "counter": (0.30, 0.50)}}


@pytest.mark.parametrize("px, band", [(400, "terminal"), (150, "terminal"), (149.9, "counter"), (60, "counter"),
                                      (59.9, "far"), (20, "far")])
def test_bands_by_face_width(px, band):
    assert band_of(px) == band


def test_scores_between_the_thresholds_are_uncertain_and_bands_not_given_use_the_published_threshold():
    th = Thresholds.for_pack(TABLE, "yunet_sface", None, 0.363)
    assert [th.judge(s, 200).decision for s in (0.47, 0.469, 0.30, 0.299)] == ["match", "uncertain", "uncertain",
                                                                              "mismatch"]
    assert th.judge(0.48, 100).decision == "uncertain" and th.judge(0.48, 100).band == "counter"
    far = th.judge(0.37, 40)  # not in the table: 0.363 for both, no uncertain band
    assert (far.decision, far.band, far.lower, far.upper) == ("match", "far", 0.363, 0.363)


def test_one_match_threshold_replaces_the_table_and_directory_packs_go_by_folder_name():
    th = Thresholds.for_pack(TABLE, "yunet_sface", 0.5, 0.363)
    assert all(v == (0.5, 0.5) for v in th.bands.values())
    d = Thresholds.for_pack({"buffalo_l": {"terminal": (0.2, 0.3)}}, "/opt/packs/buffalo_l", None, 0.4)
    assert d.pack == "buffalo_l" and d.bands["terminal"] == (0.2, 0.3) and d.bands["counter"] == (0.4, 0.4)


def test_exact_intervals():
    r = rate(0, 3000)
    assert r.low == 0.0 and 0.0009 < r.high < 0.0013  # about 3/n: the "rule of three"
    r = rate(76, 7568)
    assert r.low < r.value < r.high


def test_recommendation_meets_the_far_bound_when_there_are_enough_impostor_pairs():
    rng = np.random.default_rng(7)
    imp = rng.normal(0.1, 0.1, 20000)
    gen = rng.normal(0.7, 0.1, 500)
    r = recommend(gen, imp, band="terminal", target_far=0.001, target_frr=0.01)
    assert r.meets_target and r.far.high <= 0.001
    assert r.upper > np.quantile(imp, 0.999) and r.lower <= r.upper
    assert r.false_mismatch.errors <= 0.01 * gen.size + 1
    # the upper threshold is the lowest that shows the bound: a little lower does not
    lower_far = rate(int((imp >= r.upper - 0.01).sum()), imp.size)
    assert lower_far.high > 0.001


def test_too_few_pairs_never_loosen_the_threshold_in_force():
    r = recommend([0.8, 0.9], [0.1, 0.2], band="counter", target_far=0.001, fallback_upper=0.5)
    assert not r.meets_target and r.upper == 0.5
    with pytest.raises(ValueError, match="need both genuine and impostor"):
        recommend([], [0.1], band="far", target_far=0.01)
