"""Convolutional ODE networks from a config file: `stablenet train` / evaluate / plot / analyze,
augmentation with exact resume, multilevel in depth, CIFAR-10 and configuration errors."""

import copy
import json
import tomllib

import pytest
import torch

from stablenet.app.cli import main
from stablenet.app.config import ConfigError, parse_config
from stablenet.conv_models import ImageClassifier
from stablenet.dynamics.conv import ConvParabolic, frozen_batch_statistics
from stablenet.app.training import load_run, train

from _resume import interrupted_run_resumes_exactly, without_times
from helpers import assert_cli_error, assert_png, raises_one_line

# digits: 8×8 images, 1257 training images; two stages (8 and 16 channels, 8×8 then 4×4 maps)
TOML = """seed = 1
[data]
name = "digits"
[data.augment]
padding = 1
flip = false
normalize = true
[model]
kind = "conv"
widths = [8, 16]
dynamics = "conv_parabolic"
normalization = "batch"
method = "euler"
T = 1.0
steps = 2
[training]
epochs = 4
batch_size = 64
optimizer = "sgd"
lr = 0.1
nesterov = true
weight_decay = 5e-4
schedule = "onecycle"
threads = 1
"""

RAW = {"seed": 2, "data": {"name": "digits", "augment": {"padding": 1, "flip": True, "erase": 0.25, "normalize": True}},
       "model": {"kind": "conv", "widths": [4, 8], "normalization": "batch", "method": "euler", "T": 1.0,
                 "steps": 2},
       "training": {"epochs": 3, "batch_size": 128, "optimizer": "sgd", "lr": 0.1, "schedule": "onecycle",
                    "threads": 1}}


def conv_config(**changes):
    raw = copy.deepcopy(RAW)
    for key, value in changes.items():
        table, name = key.split(".")
        raw[table][name] = value
    return parse_config(raw)


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    """A tiny parabolic conv network trained through the CLI (4 epochs, about 2 s)."""
    folder = tmp_path_factory.mktemp("conv")
    (folder / "digits-conv.toml").write_text(TOML)
    run = folder / "run"
    assert main(["train", str(folder / "digits-conv.toml"), "--out", str(run), "--quiet"]) == 0
    return run


def test_cli_trains_a_conv_network_and_the_loss_falls(conv_run, capsys):
    history = json.loads((conv_run / "history.json").read_text())
    losses = [h["train_loss"] for h in history]
    # measured over seeds 0-7 (ATEN_CPU_CAPABILITY=default MKL_CBWR=AVX2): the loss falls every
    # epoch, to 0.34-0.44 of the first; validation accuracy 0.74-0.88, test 0.72-0.84 (chance 0.1)
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.6 * losses[0], losses
    metrics = json.loads((conv_run / "metrics.json").read_text())
    assert metrics["val_accuracy"] > 0.6 and metrics["test_accuracy"] > 0.6
    assert metrics["config"]["model"]["kind"] == "conv"
    # the one-cycle schedule is stepped per batch: warm-up, then annealed far below the peak
    assert history[0]["lr"] > history[-1]["lr"] and history[-1]["lr"] < 1e-3
    # images: curves only (no decision regions / feature paths), without errors
    assert sorted(p.name for p in conv_run.glob("*.png")) == ["curves.png"]
    config, model, data = load_run(conv_run)
    assert isinstance(model, ImageClassifier) and model.image_shape == (1, 8, 8)
    assert [b.steps for b in model.blocks] == [2, 2]
    # the standardization is stored with the weights: the training images' mean and std
    x = data.train.x
    assert float(model.input_mean[0]) == pytest.approx(float(x.double().mean()), rel=1e-5)
    assert float(model.input_std[0]) == pytest.approx(float(x.double().std(unbiased=False)), rel=1e-5)
    capsys.readouterr()
    assert main(["evaluate", str(conv_run), "--split", "test"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == pytest.approx(metrics["test_accuracy"]) and out["batch_size"] == 500
    # the in-block batch norm was calibrated on the training images: any evaluation batch size
    # gives the same predictions, one image at a time included
    assert metrics["batch_norm_statistics"] == {"file": "batch_norm_statistics.safetensors", "images": len(x)}
    assert model.batch_norm_statistics is not None and model.batch_norm_grid == [[2, "euler"], [2, "euler"]]
    assert main(["evaluate", str(conv_run), "--split", "test", "--batch-size", "1"]) == 0
    singles = json.loads(capsys.readouterr().out)
    assert singles["accuracy"] == out["accuracy"] and singles["loss"] == pytest.approx(out["loss"], rel=1e-5)
    assert out["batch_norm_statistics"] == singles["batch_norm_statistics"] == "population"
    # another state grid: the statistics are recomputed for it
    assert main(["evaluate", str(conv_run), "--steps", "4", "--batch-size", "1"]) == 0
    finer = json.loads(capsys.readouterr().out)
    assert finer["steps"] == [4, 4] and finer["batch_norm_statistics"] == "population"
    assert main(["evaluate", str(conv_run), "--steps", "4", "--batch-size", "60"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == finer["accuracy"]
    assert main(["plot", str(conv_run)]) == 0


def test_analyze_a_parabolic_conv_run_gives_no_positive_real_part(conv_run, capsys):
    assert main(["analyze", str(conv_run), "--samples", "2"]) == 0
    report = json.loads((conv_run / "analysis" / "stability.json").read_text())
    assert [b["dynamics"] for b in report["blocks"]] == ["ConvParabolic", "ConvParabolic"]
    # block 0: 8 channels on a 6×6 window of 8×8 maps; block 1: 16 channels, 4×4 maps (whole)
    assert [b["jacobian_size"] for b in report["blocks"]] == [8 * 36, 16 * 16]
    layers = [layer for b in report["blocks"] for layer in b["layers"]]
    assert len(layers) == 4
    assert all(layer["max_real"] <= 1e-6 for layer in layers), [layer["max_real"] for layer in layers]
    assert all(layer["continuous_stable"] for layer in layers) and report["network"]["continuous_stable"]
    assert "(≤ 0 up to round-off in every layer)" in capsys.readouterr().out
    assert_png(conv_run / "analysis" / "eigenvalues_block1.png")


def test_analyze_out_and_crop(conv_run, tmp_path, capsys):
    """--out puts stability.json and the figures in that directory (the run is left alone);
    --crop sets the window whose Jacobian is computed: crop² positions × channels per block,
    capped by the feature map (block 1's maps are 4×4)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(conv_run, run, ignore=shutil.ignore_patterns("analysis"))
    out = tmp_path / "report"
    assert main(["analyze", str(run), "--out", str(out), "--samples", "1", "--crop", "3"]) == 0
    assert str(out / "stability.json") in capsys.readouterr().out
    assert not (run / "analysis").exists()
    report = json.loads((out / "stability.json").read_text())
    assert report["crop"] == 3 and report["samples"] == 1
    assert [b["state_shape"] for b in report["blocks"]] == [[8, 8, 8], [16, 4, 4]]
    assert [b["jacobian_size"] for b in report["blocks"]] == [8 * 3 * 3, 16 * 3 * 3]
    assert report["figures"] == ["eigenvalues_block0.png", "eigenvalues_block1.png"]
    for name in report["figures"]:
        assert_png(out / name)
    assert main(["analyze", str(run), "--out", str(out), "--samples", "1", "--crop", "5"]) == 0
    report = json.loads((out / "stability.json").read_text())
    assert [b["jacobian_size"] for b in report["blocks"]] == [8 * 5 * 5, 16 * 4 * 4]


def test_frozen_batch_statistics_replay_the_batch_normalization():
    torch.manual_seed(0)
    dyn = ConvParabolic(3, nt=1, activation="relu", normalization="batch").double()
    theta = tuple(w[0] for w in dyn.control_weights())
    y = torch.randn(6, 3, 5, 5, dtype=torch.float64)
    with frozen_batch_statistics() as stats:
        recorded = dyn(y, *theta)
    assert torch.allclose(recorded, dyn(y, *theta), atol=1e-12) and len(stats) == 1
    with frozen_batch_statistics(stats):
        replayed = dyn(y[:2], *theta)       # a part of the batch, normalized with the batch's statistics
    assert torch.allclose(replayed, recorded[:2], atol=1e-12)
    # with the statistics fixed, the Jacobian −Kᵀ diag(σ'/s) K is symmetric negative semidefinite
    J = torch.func.jacrev(lambda v: _frozen(dyn, theta, stats, v))(y[:1].reshape(-1)).detach()
    assert torch.allclose(J, J.T, atol=1e-10)
    assert float(torch.linalg.eigvalsh(J).max()) <= 1e-10


def _frozen(dyn, theta, stats, v):
    with frozen_batch_statistics(stats):
        return dyn(v.reshape(1, 3, 5, 5), *theta).reshape(-1)


@pytest.mark.parametrize("stop_after", [1, 2])
def test_interrupted_conv_run_with_augmentation_resumes_exactly(tmp_path, monkeypatch, stop_after):
    cfg = conv_config()
    interrupted_run_resumes_exactly(cfg, tmp_path, monkeypatch, stop_after)


def test_augmentation_changes_training_and_same_seed_repeats(tmp_path):
    a = train(conv_config(**{"training.epochs": 1}), tmp_path / "a", progress=False)
    b = train(conv_config(**{"training.epochs": 1}), tmp_path / "b", progress=False)
    assert without_times(a) == without_times(b)
    raw_no_aug = copy.deepcopy(RAW)
    raw_no_aug["data"]["augment"] = {"normalize": True}
    raw_no_aug["training"]["epochs"] = 1
    c = train(parse_config(raw_no_aug), tmp_path / "c", progress=False)
    assert c["val_loss"] != a["val_loss"]


def test_conv_multilevel_in_depth(tmp_path):
    raw = copy.deepcopy(RAW)
    raw["model"].update(steps=4, T=2.0)
    raw["multilevel"] = {"levels": 2, "epochs_per_level": 1}
    raw["training"].update(schedule="multistep", lr_milestones=[1], lr_decay=0.5, lr=0.05)
    metrics = train(parse_config(raw), tmp_path / "ml", progress=False)
    assert [r["steps"] for r in metrics["levels"]] == [[2, 2], [4, 4]]
    history = json.loads((tmp_path / "ml" / "history.json").read_text())
    assert [(h["level"], h["steps"]) for h in history] == [(1, 4), (2, 8)]
    _, model, _ = load_run(tmp_path / "ml")
    assert [(b.steps, b.dynamics.nt) for b in model.blocks] == [(4, 4), (4, 4)]


@pytest.mark.parametrize("stop_after", [1, 2], ids=["at-a-level-end", "inside-a-level"])
def test_interrupted_conv_multilevel_run_resumes_exactly(tmp_path, monkeypatch, stop_after):
    """A conv network trained in depth (2 → 4 steps per block) with batch norm and augmentation,
    killed after a checkpoint at the end of level 1 or inside level 2, resumes exactly."""
    raw = copy.deepcopy(RAW)
    raw["model"].update(steps=4, T=2.0)
    raw["multilevel"] = {"levels": 2, "epochs_per_level": [1, 2]}
    raw["training"].pop("epochs")

    def at_interruption(saved, run):
        assert saved["level"] == stop_after

    interrupted_run_resumes_exactly(parse_config(raw), tmp_path, monkeypatch, stop_after, at_interruption)


def test_conv_hamiltonian_with_reversible_gradient_trains_like_autograd(tmp_path):
    """model.gradient = "reversible" in the trainer: Verlet conv blocks with batch norm recompute
    their states backward instead of storing them, and (float64) train as autograd does."""
    runs = {}
    for mode in ["autograd", "reversible"]:
        raw = copy.deepcopy(RAW)
        raw["model"].update(dynamics="conv_hamiltonian", method="verlet", gradient=mode)
        raw["training"].update(epochs=2, dtype="float64")
        metrics = train(parse_config(raw), tmp_path / mode, progress=False)
        runs[mode] = metrics, json.loads((tmp_path / mode / "history.json").read_text())
    _, model, _ = load_run(tmp_path / "reversible")
    assert {b.gradient.name for b in model.blocks} == {"reversible"}
    (exact, exact_history), (reversible, history) = runs["autograd"], runs["reversible"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for a, b in zip(exact_history, history):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-9)
    assert reversible["val_loss"] == pytest.approx(exact["val_loss"], rel=1e-9)
    assert reversible["val_accuracy"] == exact["val_accuracy"]


def test_cifar10_without_its_files_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('[data]\nname = "cifar10"\n[model]\nkind = "conv"\nmethod = "euler"\n'
                                     'T = 1.0\nsteps = 1\n[training]\nthreads = 1\n')
    code = main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "run"), "--quiet",
                 "--data-dir", str(tmp_path / "nowhere")])
    assert code == 2
    assert_cli_error(capsys.readouterr().err, "CIFAR-10 binary files not found",
                     str(tmp_path / "nowhere" / "data_batch_1.bin"), "test_batch.bin", "cifar-10-binary.tar.gz")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change,expected", [
    ({"model.opening": "duplicate"}, "model.opening: applies to model.kind 'dense' only"),
    ({"model.opening": "linear"}, "model.opening: applies to model.kind 'dense' only"),   # even at its default
    ({"model.blocks": [{"T": 1.0, "steps": 1, "method": "euler"}]}, "model.blocks: applies to model.kind 'dense'"),
    ({"model.T": None}, "model.T: required with model.kind 'conv'"),
    ({"model.method": "verlet"}, "model.method: 'verlet' needs a two-stream dynamics (y, z) such as 'conv_hamiltonian'"),
    ({"model.dynamics": "conv_second_order"}, "model.dynamics: 'conv_second_order' needs method 'leapfrog'"),
    ({"model.dynamics": "parabolic"}, "model.dynamics: Input should be 'conv_single'"),
    ({"model.kernel_size": 4}, "model.kernel_size: kernel_size must be an odd integer >= 1, got 4"),
    ({"model.widths": []}, "model.widths: expected a non-empty list of channel counts"),
    ({"model.blocks_per_stage": [1, 1, 1]}, "model.blocks_per_stage: [1, 1, 1] has 3 entries; expected one per stage (2"),
    ({"model.gamma": 0.1}, "model.gamma: 0.1 applies to dynamics 'conv_antisymmetric' only"),
    ({"model.normalization": "layer"}, "model.normalization: Input should be 'none', 'batch', 'instance' or 'tv'"),
    ({"data.name": "peaks"}, "model.kind: 'conv' needs an image data set"),
    ({"training.optimizer": "gauss_newton"}, "training.optimizer: 'gauss_newton' is not available for model.kind 'conv'"),
    ({"training.schedule": "multistep"}, "training.lr_milestones: []; expected a non-empty increasing list"),
    ({"data.augment": {"mean": [0.5]}}, "data.augment.std: missing; expected mean and std together"),
    ({"data.augment": {"normalize": True, "mean": [0.5], "std": [0.2]}}, "data.augment.normalize: true together"),
    ({"data.augment": {"padding": -1}}, "data.augment.padding: Input should be greater than or equal to 0"),
])
def test_conv_config_errors_name_the_key(change, expected):
    raw = copy.deepcopy(RAW)
    for key, value in change.items():
        table, name = key.split(".")
        if value is None:
            raw[table].pop(name)
        else:
            raw[table][name] = value
    with raises_one_line(ConfigError, expected):
        parse_config(raw)


def test_dense_configs_refuse_conv_keys_and_conv_dynamics():
    dense = {"data": {"name": "digits"}, "model": {"blocks": [{"T": 1.0, "steps": 2, "method": "euler"}]}}
    parse_config(dense)
    for model, expected in [({"widths": [4]}, "model.widths: applies to model.kind 'conv' only"),
                            ({"blocks": [{"dynamics": "conv_parabolic", "T": 1.0, "steps": 2, "method": "euler"}]},
                             "model.blocks.0.dynamics: 'conv_parabolic' is a convolutional dynamics"),
                            ({"blocks": []}, "model.blocks: a dense model needs at least one")]:
        raw = copy.deepcopy(dense)
        raw["model"].update(model)
        with pytest.raises(ConfigError, match=expected):
            parse_config(raw)
    with pytest.raises(ConfigError, match="data.augment: applies to convolutional models"):
        parse_config({**dense, "data": {"name": "digits", "augment": {"flip": True}}})


def test_cuda_device_without_cuda_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only torch, on any machine
    with pytest.raises(ValueError, match="training.device: 'cuda' but this torch has no usable CUDA device"):
        train(conv_config(**{"training.device": "cuda"}), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_run_trained_on_cuda_loads_on_a_cpu_only_machine(conv_run, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only torch, on any machine
    run = tmp_path / "gpu-run"
    shutil.copytree(conv_run, run)
    raw = json.loads((run / "config.json").read_text())
    raw["training"]["device"] = "cuda"
    (run / "config.json").write_text(json.dumps(raw))
    config, model, _ = load_run(run)
    assert config.training.device == "cpu" and next(model.parameters()).device.type == "cpu"


def test_bfloat16_mixed_precision_trains_under_autocast(tmp_path):
    """bfloat16 autocast (on the CPU here; meant for GPUs): the loss falls, accuracy is far above
    chance, the weights stay float32, and the run differs from the float32 one (autocast acted)."""
    raw = tomllib.loads(TOML)
    full = train(parse_config(raw), tmp_path / "f32", progress=False)
    raw["training"]["mixed_precision"] = "bfloat16"
    mixed = train(parse_config(raw), tmp_path / "bf16", progress=False)
    history = json.loads((tmp_path / "bf16" / "history.json").read_text())
    # measured over seeds 0-7 (ATEN_CPU_CAPABILITY=default MKL_CBWR=AVX2): the loss falls to
    # 0.35-0.46 of the first epoch's, validation accuracy 0.73-0.89, at most 0.04 from float32's
    assert history[-1]["train_loss"] < 0.6 * history[0]["train_loss"]
    assert mixed["val_accuracy"] > 0.6
    assert mixed["val_loss"] != full["val_loss"] and abs(mixed["val_accuracy"] - full["val_accuracy"]) < 0.1
    _, model, _ = load_run(tmp_path / "bf16")
    assert {p.dtype for p in model.parameters()} == {torch.float32}


@pytest.mark.parametrize("stop_after", [1])
def test_float16_mixed_precision_keeps_its_loss_scale_across_resume(tmp_path, monkeypatch, stop_after):
    cfg = conv_config(**{"training.mixed_precision": "float16"})

    def scale_saved(saved, run):
        assert saved["scaler"]["scale"] > 0 and "_growth_tracker" in saved["scaler"]

    interrupted_run_resumes_exactly(cfg, tmp_path, monkeypatch, stop_after, check_checkpoint=scale_saved)
    history = json.loads((tmp_path / "reference" / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.parametrize("change,expected", [
    ({"training.mixed_precision": "bfloat16", "training.optimizer": "lbfgs"},
     "training.mixed_precision: 'bfloat16' needs optimizer 'sgd' or 'adam'"),
    ({"training.mixed_precision": "float16", "training.dtype": "float64"}, "and dtype 'float32'"),
    ({"training.mixed_precision": "bfloat16", "model.gradient": "checkpoint"},
     "model.gradient: 'checkpoint' with training.mixed_precision 'bfloat16'"),
    ({"training.mixed_precision": "half"}, "training.mixed_precision: Input should be 'none', 'bfloat16'"),
    ({"training.label_smoothing": 0.1, "training.optimizer": "gauss_newton"},
     "training.label_smoothing: 0.1 applies to loss 'cross_entropy' with optimizer 'sgd', 'adam' or 'lbfgs'"),
    ({"data.augment": {"erase": 1.5}}, "data.augment.erase: Input should be less than or equal to 1"),
])
def test_precision_and_regularization_errors_name_the_key(change, expected):
    with raises_one_line(ConfigError, expected):
        conv_config(**change)


def test_a_config_json_of_an_earlier_build_with_every_model_key_still_loads(conv_run, tmp_path):
    """Earlier 0.1.0 builds dumped the dense keys at their defaults into a conv run's config.json
    (and the conv keys into a dense one's); such run directories must still load and resume."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(conv_run, old)
    raw = json.loads((old / "config.json").read_text())
    assert "opening" not in raw["model"] and "blocks" not in raw["model"]   # dumped by this build
    raw["model"].update(opening="linear", blocks=[])
    (old / "config.json").write_text(json.dumps(raw))
    config, model, _ = load_run(old)
    assert config.model.kind == "conv" and isinstance(model, ImageClassifier)
    raw["model"]["opening"] = "duplicate"                   # not a default: still refused
    (old / "config.json").write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="model.opening: applies to model.kind 'dense' only"):
        load_run(old)
