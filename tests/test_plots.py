"""The figures' content, read from the matplotlib Figure objects the builders return: every axis
labelled, legends naming the curves and classes, the best epoch marked, an accuracy axis zoomed
on the band where the curves differ, the feature paths on the classifier's own directions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from stablenet.analysis.jacobian import LayerJacobians  # noqa: E402
from stablenet.app.figures import eigenvalues_figure, sensitivity_figure  # noqa: E402
from stablenet.app.plots import (accuracy_limits, best_epoch, classifier_directions, curves_figure,  # noqa: E402
                                 decision_regions_figure, feature_paths_figure)

from helpers import small_config  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def history(train, val, levels=None):
    """History rows (epochs 1…) from accuracies in [0, 1]; losses falling with the error."""
    rows = [{"epoch": e + 1, "train_accuracy": a, "val_accuracy": b, "train_loss": 1.01 - a, "val_loss": 1.02 - b}
            for e, (a, b) in enumerate(zip(train, val))]
    for row, level in zip(rows, levels or []):
        row.update(level=level, steps=4 * 2 ** (level - 1))
    return rows


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def figure_legend(fig):
    (legend,) = fig.legends
    return [t.get_text() for t in legend.get_texts()]


def vertical_lines_at(ax):
    """x of the vertical lines (axvline) on ``ax``."""
    return [line.get_xdata()[0] for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]


# -- curves.png ------------------------------------------------------------------------------------
def test_curves_zoom_on_the_settled_band_and_mark_the_best_epoch():
    # a run like peaks: 22% after epoch 1, then 98–99.6% from epoch 6 on; best validation at epoch 11
    train = [0.22, 0.77, 0.94, 0.972, 0.98, 0.985, 0.989, 0.990, 0.992, 0.993, 0.993, 0.995, 0.996, 0.996, 0.996]
    val = [0.80, 0.94, 0.975, 0.978, 0.977, 0.983, 0.983, 0.983, 0.984, 0.986, 0.988, 0.985, 0.984, 0.986, 0.988]
    rows = history(train, val)
    assert best_epoch(rows) == 11  # the first of the equal best (98.8% at 11 and 15), as training keeps it
    fig = curves_figure(rows)
    loss, acc = fig.axes
    assert figure_legend(fig) == ["train", "validation", "best epoch 11: validation 98.80%"]  # both panels'
    for ax in (loss, acc):
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel()
        assert [line.get_label() for line in ax.get_lines()][:2] == ["train", "validation"]
        assert 11 in vertical_lines_at(ax)
    assert "loss" in loss.get_ylabel() and "accuracy" in acc.get_ylabel()
    lo, hi = acc.get_ylim()
    tail = [100 * a for a in train[5:] + val[5:]]  # the last two thirds of the epochs
    assert 95 < lo < min(tail) and max(tail) < hi <= 100.5, (lo, hi)
    margin = 0.1 * (max(tail) - min(tail))
    assert min(tail) - lo >= margin and hi - max(tail) >= margin
    assert "epochs 1–5 below the axis (lowest 22.0%)" in acc.get_title()


def test_curves_of_a_run_inside_95_to_100_show_every_point_with_margin():
    train = [0.955, 0.97, 0.98, 0.99, 0.995, 0.996]
    val = [0.96, 0.965, 0.975, 0.98, 0.985, 0.982]
    fig = curves_figure(history(train, val))
    lo, hi = fig.axes[1].get_ylim()
    values = [100 * v for v in train + val]
    assert 90 < lo < min(values) and max(values) < hi < 101
    assert "below" not in fig.axes[1].get_title()
    assert best_epoch(history(train, val)) == 5


def test_accuracy_limits_of_flat_curves_keep_a_window():
    lo, hi = accuracy_limits([[100.0] * 5, [100.0] * 5])
    assert lo < 100 <= hi and hi - lo >= 0.5
    lo, hi = accuracy_limits([[50.0, 50.0]])
    assert lo < 50 < hi


def test_multilevel_curves_mark_the_refinements_and_the_best_epoch_of_the_last_level():
    rows = history([0.6, 0.9, 0.95, 0.96, 0.97, 0.975], [0.7, 0.99, 0.93, 0.95, 0.96, 0.955], levels=[1, 1, 2, 2, 3, 3])
    assert best_epoch(rows) == 5  # epoch 2's 99% belongs to level 1, not the finest level
    fig = curves_figure(rows)
    loss, acc = fig.axes
    assert 5 in vertical_lines_at(acc) and {2.5, 4.5} <= set(vertical_lines_at(acc))
    assert figure_legend(fig)[-1] == "refined in depth (N: state steps)"
    assert [t.get_text() for t in acc.texts] == ["N=8", "N=16"]


# -- decision_regions.png and feature_paths.png ----------------------------------------------------
@pytest.fixture(scope="module")
def peaks_model():
    from stablenet.app.networks import build_model
    from stablenet.data import load_dataset

    data = load_dataset("peaks", seed=0, n_train_per_class=20, n_val_per_class=5, n_test_per_class=4)
    model = build_model(small_config(), 2, data.n_classes)
    return model, data


def test_decision_regions_have_axis_labels_and_a_class_legend(peaks_model):
    model, data = peaks_model
    ax = decision_regions_figure(model, data, resolution=20).axes[0]
    assert ax.get_xlabel() and ax.get_ylabel()
    assert legend_texts(ax) == [f"class {c}" for c in range(data.n_classes)]


def test_feature_paths_lie_in_the_plane_of_the_classifier(peaks_model):
    model, data = peaks_model
    fig = feature_paths_figure(model, data, per_class=5, resolution=20)
    ax = fig.axes[0]
    assert "singular direction" in ax.get_xlabel() and "singular direction" in ax.get_ylabel()
    assert legend_texts(ax) == [f"class {c}" for c in range(data.n_classes)]
    assert "Y_0 (open) → Y_N (filled)" in ax.get_title() and "% of the end points" in ax.get_title()
    # the end points drawn are the final features projected on W's top-2 singular directions
    idx_per_class = 5
    ends = [line for line in ax.get_lines() if len(line.get_xdata()) == idx_per_class and line.get_marker() == "o"]
    assert len(ends) == data.n_classes
    basis, share = classifier_directions(model.classifier.weight)
    assert 0 < share <= 1
    drawn = torch.tensor([[x, y] for line in ends for x, y in zip(line.get_xdata(), line.get_ydata())])
    assert torch.allclose(drawn.mean(0), torch.zeros(2, dtype=drawn.dtype), atol=1e-9)  # centred on the end points
    with torch.no_grad():  # every drawn end point is a training point's Y_N on that plane, up to the centring shift
        projected = model.features(data.train.x).double() @ basis
    nearest = lambda shift: torch.cdist(drawn + shift, projected).min(1).values.max()  # noqa: E731
    assert min(float(nearest(q - drawn[0])) for q in projected) < 1e-6


def test_classifier_directions_are_those_the_logit_differences_change_along():
    # W reads only features 0 and 1 (feature 0 twice as strongly); a shared row is ignored
    W = torch.tensor([[2.0, 0.0, 0.0, 5.0], [-2.0, 0.0, 0.0, 5.0], [0.0, 1.0, 0.0, 5.0], [0.0, -1.0, 0.0, 5.0]])
    basis, share = classifier_directions(W)
    assert torch.allclose(basis.T @ basis, torch.eye(2, dtype=basis.dtype), atol=1e-12)
    assert torch.allclose(basis[:, 0].abs(), torch.tensor([1.0, 0, 0, 0], dtype=basis.dtype), atol=1e-12)
    assert torch.allclose(basis[:, 1].abs(), torch.tensor([0, 1.0, 0, 0], dtype=basis.dtype), atol=1e-12)
    assert share == pytest.approx(1.0)


def test_feature_paths_of_two_classes_use_the_logit_difference():
    from stablenet.app.networks import build_model
    from stablenet.data import load_dataset

    data = load_dataset("moons", seed=0, n_train=40)
    model = build_model(small_config(), 2, data.n_classes)
    ax = feature_paths_figure(model, data, per_class=4, resolution=10).axes[0]
    assert "w₁ − w₀" in ax.get_xlabel() and ax.get_ylabel()
    assert legend_texts(ax) == ["class 0", "class 1"]


# -- the analysis' eigenvalue and sensitivity panels ----------------------------------------------
@pytest.mark.parametrize("method,region", [("rk4", "rk4 stability region"), ("verlet", "verlet stability interval")])
def test_eigenvalue_panels_are_labelled_with_a_legend(method, region):
    g = torch.Generator().manual_seed(0)
    lj = LayerJacobians(torch.randn(6, 3, 4, 4, generator=g, dtype=torch.float64) * 0.3, h=0.5, method=method,
                        second_order=False)
    fig = eigenvalues_figure(lj, max_panels=6, title="block 0")
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 6  # 4 columns: the bottom of columns 0, 1 is in row 2, of columns 2, 3 in row 1
    grid = [panels[:4], panels[4:]]
    assert all(row[0].get_ylabel() == "Im h·λ" for row in grid)
    assert [ax.get_xlabel() for ax in panels] == ["", "", "Re h·λ", "Re h·λ", "Re h·λ", "Re h·λ"]
    assert [ax.get_title() for ax in panels][:2] == ["layer 0 (t = 0)", "layer 1 (t = 0.5)"]
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "h·λ for every eigenvalue λ of the layer Jacobians of 3 samples"
    assert texts[1].startswith(region)


def test_sensitivity_figure_names_every_curve():
    result = {"depth": [0, 1, 2], "mean": [1.0, 1.1, 1.2], "max": [1.0, 1.3, 1.6]}
    ax = sensitivity_figure([("block 0 random", result), ("block 0 worst", result)]).axes[0]
    assert ax.get_xlabel() == "layer j" and "sensitivity" in ax.get_ylabel()
    assert legend_texts(ax) == ["block 0 random, mean over samples", "block 0 random, largest",
                                "block 0 worst, mean over samples", "block 0 worst, largest"]
    colours = [line.get_color() for line in ax.get_lines()[:4]]
    assert colours[0] == colours[1] != colours[2] == colours[3]  # one colour per curve
