"""The shared verdict rule of the seed experiments (issue 17): each outcome for each kind of claim."""

import json
import math

import numpy as np
import pytest

from stablenet.app.experiments.verdict import check, describe, judge

PATTERN = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])          # mean 0, sample std √2.5, SE √0.5
SE = math.sqrt(2.5) / math.sqrt(5)


def around(mean, se):
    """Five values with exactly this mean and standard error."""
    return list(mean + PATTERN * se / SE)


def test_helper_gives_the_requested_mean_and_standard_error():
    v = around(3.0, 0.25)
    assert math.isclose(np.mean(v), 3.0) and math.isclose(np.std(v, ddof=1) / math.sqrt(5), 0.25)


@pytest.mark.parametrize("mean, verdict", [(0.6, "supported"), (-0.6, "refuted"), (0.4, "inconclusive"),
                                           (-0.4, "inconclusive"), (0.0, "inconclusive")])
def test_greater_than_reference(mean, verdict):
    # SE = 0.25, so two standard errors are 0.5
    r = judge("RK4 beats Euler", "RK4 − Euler", around(mean, 0.25), "greater")
    assert r["verdict"] == verdict
    assert r["n"] == 5 and math.isclose(r["mean"], mean, abs_tol=1e-12) and math.isclose(r["sem"], 0.25)
    assert math.isclose(r["std"], 0.25 * math.sqrt(5))


@pytest.mark.parametrize("mean, verdict", [(-0.6, "supported"), (0.6, "refuted"), (0.4, "inconclusive")])
def test_smaller_than_reference(mean, verdict):
    assert judge("c", "s", around(mean, 0.25), "smaller")["verdict"] == verdict


def test_nonzero_reference_shifts_the_rule():
    assert judge("c", "s", around(10.6, 0.25), "greater", reference=10.0)["verdict"] == "supported"
    assert judge("c", "s", around(10.4, 0.25), "greater", reference=10.0)["verdict"] == "inconclusive"
    assert judge("c", "s", around(9.4, 0.25), "smaller", reference=10.0)["verdict"] == "supported"
    assert judge("c", "s", around(10.6, 0.25), "smaller", reference=10.0)["verdict"] == "refuted"


@pytest.mark.parametrize("mean, se, verdict", [
    (0.5, 0.25, "supported"),       # interval [0, 1] inside ±2
    (-1.4, 0.25, "supported"),      # [-1.9, -0.9]
    (3.0, 0.25, "refuted"),         # [2.5, 3.5] above +2
    (-3.0, 0.25, "refuted"),        # below −2
    (1.8, 0.25, "inconclusive"),    # [1.3, 2.3] straddles +2
    (0.0, 1.5, "inconclusive"),     # [-3, 3] covers the whole margin: too noisy to say
])
def test_within_margin(mean, se, verdict):
    r = judge("similar", "RK4 − Euler (points)", around(mean, se), "within", margin=2.0)
    assert r["verdict"] == verdict
    assert r["margin"] == 2.0 and r["interval"] == pytest.approx([mean - 2 * se, mean + 2 * se])


def test_within_margin_around_a_reference():
    assert judge("c", "s", around(10.5, 0.1), "within", reference=10.0, margin=1.0)["verdict"] == "supported"
    assert judge("c", "s", around(12.0, 0.1), "within", reference=10.0, margin=1.0)["verdict"] == "refuted"


def test_one_seed_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        judge("c", "s", [0.5], "greater")
    with pytest.raises(ValueError, match="at least 2"):
        judge("c", "s", [], "within", margin=1.0)


def test_identical_values_have_zero_spread_and_are_judged_by_the_sign():
    r = judge("c", "s", [0.1, 0.1, 0.1], "greater")
    assert (r["mean"], r["std"], r["sem"]) == (0.1, 0.0, 0.0)
    assert r["verdict"] == "supported"
    assert judge("c", "s", [-0.1] * 3, "greater")["verdict"] == "refuted"
    assert judge("c", "s", [0.0] * 4, "greater")["verdict"] == "inconclusive"
    assert judge("c", "s", [0.0] * 4, "smaller")["verdict"] == "inconclusive"
    assert judge("c", "s", [0.0] * 4, "within", margin=0.5)["verdict"] == "supported"
    assert judge("c", "s", [0.7] * 4, "within", margin=0.5)["verdict"] == "refuted"


def test_boundary_computed_in_floating_point_counts_as_inside():
    # 100·(0.985 − 0.965) = 2.0000000000000018: exactly 2 points is "within 2 points"
    d = 100 * (0.985 - 0.965)
    assert d > 2.0
    assert judge("c", "s", [d, d], "within", margin=2.0)["verdict"] == "supported"


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction"):
        judge("c", "s", [1, 2], "bigger")
    with pytest.raises(ValueError, match="margin"):
        judge("c", "s", [1, 2], "within")
    with pytest.raises(ValueError, match="margin"):
        judge("c", "s", [1, 2], "greater", margin=1.0)
    with pytest.raises(ValueError, match="finite"):
        judge("c", "s", [1.0, float("nan")], "greater")
    with pytest.raises(TypeError):
        judge("c", "s", "12", "greater")
    with pytest.raises(ValueError, match="tolerance"):
        check("c", "s", [1.0], target=1.0, tolerance=-1.0)


def test_record_is_json_serializable_and_complete():
    values = [np.float32(0.25), np.float64(0.5), 1, 0.75]
    for record in (judge("RK4 beats Euler", "RK4 − Euler", values, "greater", seed="not tested"),
                   judge("similar", "RK4 − Euler", values, "within", margin=2.0),
                   check("Fig. 3.9 similar", "relative difference", [0.08, 0.09], target=0.0, tolerance=0.1)):
        back = json.loads(json.dumps(record))
        assert back == record
        assert {"claim", "statistic", "values", "n", "mean", "std", "sem", "verdict"} <= set(record)
        assert all(type(v) is float for v in record["values"])
    assert judge("c", "s", values, "greater", seed="98.5%")["seed"] == "98.5%"


@pytest.mark.parametrize("values, verdict", [([0.081, 0.086], "supported"), ([0.081, 0.12], "refuted"),
                                             ([-0.099], "supported"), ([0.1], "supported")])
def test_deterministic_check(values, verdict):
    r = check("similar", "relative difference", values, target=0.0, tolerance=0.1)
    assert r["verdict"] == verdict
    assert r["n"] == len(values) and r["sem"] == 0.0
    assert math.isclose(r["max_deviation"], max(abs(v) for v in values))


def test_deterministic_check_against_a_nonzero_target():
    assert check("first order", "observed order", [1.07, 1.06], target=1.0, tolerance=0.1)["verdict"] == "supported"
    assert check("first order", "observed order", [1.07, 1.16], target=1.0, tolerance=0.1)["verdict"] == "refuted"
    assert check("first order", "observed order", [0.85], target=1.0, tolerance=0.1)["verdict"] == "refuted"


def test_describe():
    assert describe(judge("c", "s", [1.0, 2.0, 3.0], "greater")) == "2 ± 1 (n = 3)"
    assert describe(check("c", "s", [0.0814, 0.0857], target=0.0, tolerance=0.1)) == \
        "0.0814, 0.0857 (target 0 ± 0.1)"
