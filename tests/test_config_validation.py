"""Config validation (issue 15): every number finite, every integer in range, clear errors for files
that are not TOML text, and config_differences (the resume check's report)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from stablenet.app.config import (MAX_COUNT, MAX_PIXELS, MAX_SEED, MAX_THREADS, MAX_WIDTH, ConfigError,
                              config_differences, load_config, parse_config)

DENSE = """\
seed = 0

[data]
name = "peaks"
options = { n_train_per_class = 10 }

[model]
opening = "duplicate"
[[model.blocks]]
dynamics = "hamiltonian"
width = 4
T = 1.0
steps = 4
method = "verlet"

[training]
epochs = 2
lr = 0.01
"""

CONV = """\
seed = 0

[data]
name = "digits"

[data.augment]
padding = 1
erase = 0.25
mean = [0.5]
std = [0.25]

[model]
kind = "conv"
widths = [4, 8]
dynamics = "conv_antisymmetric"
method = "rk4"
T = 1.0
steps = 2

[training]
epochs = 1
"""


@pytest.fixture
def dense(tmp_path):
    path = tmp_path / "dense.toml"
    path.write_text(DENSE)
    return path


@pytest.fixture
def conv(tmp_path):
    path = tmp_path / "conv.toml"
    path.write_text(CONV)
    return path


def load(path, *overrides):
    return load_config(path, list(overrides))[0]


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_base_configs_are_valid(dense, conv):
    assert load(dense).training.lr == 0.01
    assert load(conv).model.kind == "conv"


# -- finite numbers ----------------------------------------------------------------------------------

#: (base, key) of every float in the schema; extra --set overrides make the key applicable where needed
FLOAT_KEYS = [
    ("dense", "training.lr", ()),
    ("dense", "training.momentum", ("training.optimizer=sgd",)),
    ("dense", "training.lr_decay", ("training.schedule=step",)),
    ("dense", "training.onecycle_pct_start", ("training.schedule=onecycle",)),
    ("dense", "training.weight_decay", ()),
    ("dense", "training.classifier_weight_decay", ()),
    ("dense", "training.smoothness", ()),
    ("dense", "training.label_smoothing", ()),
    ("dense", "training.cg_rtol", ("training.optimizer=newton",)),
    ("dense", "training.damping", ("training.optimizer=newton",)),
    ("dense", "model.blocks.0.T", ()),
    ("dense", "model.blocks.0.gamma", ("model.blocks.0.dynamics=antisymmetric", "model.blocks.0.method=rk4")),
    ("dense", "parallel.tolerance", ()),
    ("dense", "data.options.n_train_per_class", ()),
    ("moons", "data.options.noise", ("data.name=moons", "data.options={}")),
    ("conv", "model.T", ()),
    ("conv", "model.gamma", ()),
    ("conv", "data.augment.erase", ()),
    ("conv", "data.augment.mean.0", ()),
    ("conv", "data.augment.std.0", ()),
]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
@pytest.mark.parametrize("base,key,extra", FLOAT_KEYS, ids=[k for _, k, _ in FLOAT_KEYS])
def test_every_float_must_be_finite(dense, conv, base, key, extra, value):
    path = conv if base == "conv" else dense
    load(path, *extra)  # valid without the non-finite value
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be a finite number "
                                          rf"\(got {re.escape(value)}\)") as info:
        load(path, *extra, f"{key}={value}")
    assert one_line(info).count(key) == 1


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_hessian_samples_must_be_finite(dense, value):
    with pytest.raises(ConfigError, match=rf"training.hessian_samples: expected an integer ≥ 1 \(points\) or a "
                                          rf"fraction in \(0, 1\] \(got {value}\)"):
        load(dense, "training.optimizer=newton", f"training.hessian_samples={value}")


def test_a_non_finite_value_written_in_the_file_is_refused(tmp_path):
    path = tmp_path / "inf.toml"
    path.write_text(DENSE.replace("lr = 0.01", "lr = inf").replace("T = 1.0", "T = nan"))
    with pytest.raises(ConfigError, match=r"model.blocks.0.T: Input should be a finite number \(got nan\); "
                                          r"training.lr: Input should be a finite number \(got inf\)"):
        load(path)


def test_a_float_too_large_for_a_double_is_refused(dense):
    # TOML reads 1e400 as inf
    with pytest.raises(ConfigError, match=r"training.lr: Input should be a finite number \(got inf\)"):
        load(dense, "training.lr=1e400")


def test_a_union_error_in_the_data_options_is_one_message_at_the_key(dense):
    with pytest.raises(ConfigError, match=r"^invalid config: data.options.n_train_per_class: Input should be a "
                                          r"valid number, unable to parse string as a number \(got 'many'\)$"):
        load(dense, "data.options.n_train_per_class='many'")


# -- integer ranges --------------------------------------------------------------------------------

def test_seed_range_is_the_one_torch_accepts(dense):
    # torch.manual_seed and torch.Generator().manual_seed take -2**63 … 2**64 - 1; the config keeps 0 … 2**63 - 1
    assert MAX_SEED == 2**63 - 1
    torch.Generator().manual_seed(MAX_SEED)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(MAX_SEED)
        with pytest.raises((RuntimeError, ValueError, OverflowError), match="Overflow"):
            torch.manual_seed(2**64)
    finally:
        torch.random.set_rng_state(state)
    assert load(dense, f"seed={MAX_SEED}").seed == MAX_SEED
    assert load(dense, "seed=0").seed == 0


@pytest.mark.parametrize("value,expected", [
    ("99999999999999999999", r"seed: Input should be less than or equal to 9223372036854775807 "
                             r"\(got 99999999999999999999\)"),
    (str(2**63), rf"seed: Input should be less than or equal to {MAX_SEED} \(got {2**63}\)"),
    ("-1", r"seed: Input should be greater than or equal to 0 \(got -1\)"),
    ("1.5", r"seed: Input should be a valid integer, got a number with a fractional part \(got 1.5\)"),
    ("inf", r"seed: Input should be a finite number \(got inf\)"),
])
def test_bad_seeds(dense, value, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        load(dense, f"seed={value}")
    one_line(info)


#: (base, key, largest valid value, extra overrides); the smallest valid value is tested by LOWER
UPPER = [
    ("dense", "training.epochs", MAX_COUNT, ()),
    ("dense", "training.batch_size", MAX_COUNT, ()),
    ("dense", "training.lr_step_epochs", MAX_COUNT, ()),
    ("dense", "training.lbfgs_history", MAX_COUNT, ()),
    ("dense", "training.cg_max_iter", MAX_COUNT, ("training.optimizer=newton",)),
    ("dense", "training.threads", MAX_THREADS, ()),
    ("dense", "model.blocks.0.steps", MAX_COUNT, ()),
    ("dense", "model.blocks.0.nt", MAX_COUNT, ()),
    ("dense", "model.blocks.0.width", MAX_WIDTH, ()),
    ("dense", "model.blocks.0.width_z", MAX_WIDTH, ()),
    ("dense", "model.blocks.0.hidden", MAX_WIDTH, ("model.blocks.0.dynamics=double", "model.blocks.0.method=rk4")),
    ("dense", "model.blocks.0.adjoint_steps", MAX_COUNT,
     ("model.blocks.0.gradient=adjoint", "model.blocks.0.dynamics=single", "model.blocks.0.method=rk4")),
    ("dense", "model.blocks.0.checkpoint_segment", MAX_COUNT, ("model.blocks.0.gradient=checkpoint",)),
    ("dense", "parallel.layer_ranks", MAX_COUNT, ()),
    ("dense", "parallel.coarsening", MAX_COUNT, ()),
    ("dense", "parallel.max_levels", MAX_COUNT, ()),
    ("dense", "parallel.max_iterations", MAX_COUNT, ()),
    ("dense", "multilevel.start_steps", MAX_COUNT, ("multilevel.levels=1", "multilevel.epochs_per_level=1")),
    ("dense", "multilevel.levels", 16, ("multilevel.epochs_per_level=1", "multilevel.start_steps=1")),
    ("conv", "model.steps", MAX_COUNT, ()),
    ("conv", "model.nt", MAX_COUNT, ()),
    ("conv", "model.adjoint_steps", MAX_COUNT, ("model.gradient=adjoint",)),
    ("conv", "model.checkpoint_segment", MAX_COUNT, ("model.gradient=checkpoint",)),
    ("conv", "model.kernel_size", MAX_PIXELS - 1, ()),  # odd sizes only
    ("conv", "data.augment.padding", MAX_PIXELS, ()),
]


@pytest.mark.parametrize("base,key,top,extra", UPPER, ids=[k for _, k, _, _ in UPPER])
def test_integer_upper_bounds(dense, conv, base, key, top, extra):
    path = conv if base == "conv" else dense
    load(path, *extra, f"{key}={top}")
    bound = MAX_PIXELS if key == "model.kernel_size" else top
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be less than or equal to {bound} "
                                          rf"\(got {bound + 1}\)") as info:
        load(path, *extra, f"{key}={bound + 1}")
    one_line(info)
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be less than or equal to {bound} "
                                          rf"\(got 99999999999999999999\)"):
        load(path, *extra, f"{key}=99999999999999999999")


LOWER = [
    ("dense", "training.epochs", 1), ("dense", "training.batch_size", 1), ("dense", "training.threads", 0),
    ("dense", "model.blocks.0.steps", 1), ("dense", "model.blocks.0.width", 1), ("dense", "parallel.coarsening", 2),
    ("dense", "parallel.max_iterations", 0), ("conv", "data.augment.padding", 0), ("conv", "model.kernel_size", 1),
]


@pytest.mark.parametrize("base,key,bottom", LOWER, ids=[k for _, k, _ in LOWER])
def test_integer_lower_bounds(dense, conv, base, key, bottom):
    path = conv if base == "conv" else dense
    load(path, f"{key}={bottom}")
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be greater than or equal to {bottom} "
                                          rf"\(got {bottom - 1}\)"):
        load(path, f"{key}={bottom - 1}")


@pytest.mark.parametrize("base,overrides,expected", [
    ("conv", ("model.widths=[4, 65537]",), r"model.widths: expected a non-empty list of channel counts ≥ 1 "
                                           r"\(at most 65536\), e.g. \[16, 32, 64\] \(got \[4, 65537\]\)"),
    ("conv", (f"model.blocks_per_stage={MAX_COUNT + 1}",),
     rf"model.blocks_per_stage: expected integers of at most {MAX_COUNT}, one number or one per stage "
     rf"\(got {MAX_COUNT + 1}\)"),
    ("dense", ("multilevel.levels=2", f"multilevel.epochs_per_level=[1, {MAX_COUNT + 1}]"),
     rf"multilevel.epochs_per_level: expected integers of at most {MAX_COUNT}, one number or one per level "
     rf"\(got \[1, {MAX_COUNT + 1}\]\)"),
    ("dense", ("training.schedule=multistep", f"training.lr_milestones=[10, {MAX_COUNT + 1}]"),
     rf"training.lr_milestones: \[10, {MAX_COUNT + 1}\]; expected a non-empty increasing list of epochs from 1 "
     rf"to {MAX_COUNT} with schedule 'multistep'"),
    ("dense", ("training.optimizer=newton", f"training.hessian_samples={MAX_COUNT + 1}"),
     rf"training.hessian_samples: expected at most {MAX_COUNT} points \(an integer\) or a fraction in \(0, 1\] "
     rf"\(got {MAX_COUNT + 1}\)"),
    ("dense", ("data.options.n_train_per_class=99999999999999999999",),
     rf"data.options.n_train_per_class: 99999999999999999999; expected an integer of at most {MAX_COUNT}"),
    ("dense", ("multilevel.levels=16", "multilevel.epochs_per_level=1", f"multilevel.start_steps={2**20}"),
     rf"multilevel.start_steps: {2**20} steps doubled over 16 levels give {2**35} steps or control points on the "
     rf"finest level of model.blocks.0; expected at most {MAX_COUNT}"),
])
def test_integer_lists_and_derived_counts_are_bounded(dense, conv, base, overrides, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        load(conv if base == "conv" else dense, *overrides)
    one_line(info)


def test_the_largest_values_still_parse(dense, conv):
    load(conv, f"model.widths=[4, {MAX_WIDTH}]", f"model.blocks_per_stage=[1, {MAX_COUNT}]")
    load(dense, "training.schedule=multistep", f"training.lr_milestones=[1, {MAX_COUNT}]")
    load(dense, "training.optimizer=newton", f"training.hessian_samples={MAX_COUNT}")
    load(dense, f"data.options.n_train_per_class={MAX_COUNT}")  # the loader decides whether it fits
    config = load(dense, "multilevel.levels=16", "multilevel.epochs_per_level=1", f"multilevel.start_steps={2**15}")
    assert config.level_grids()[-1] == [(2**30, 2**30)]


# -- files that are not TOML text ------------------------------------------------------------------

def test_a_binary_file_is_not_a_utf8_toml_text_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_bytes(b"\x00\xff\xfe")
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(repr(str(path)))} is not a UTF-8 TOML text "
                                          rf"file \(NUL byte at offset 0: binary data\)$") as info:
        load_config(path)
    one_line(info)


def test_a_non_utf8_file_names_the_byte(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('# café\nseed = 0\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(repr(str(path)))} is not a UTF-8 TOML text "
                                          rf"file \(byte 0xe9 at offset 5 is not UTF-8\)$"):
        load_config(path)


def test_a_nul_byte_in_utf8_text_is_binary(tmp_path):
    path = tmp_path / "nul.toml"
    path.write_bytes(DENSE.encode() + b"\x00")
    with pytest.raises(ConfigError, match=r"nul.toml' is not a UTF-8 TOML text file \(NUL byte at offset"):
        load_config(path)


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + DENSE.encode())
    assert load(path).data.name == "peaks"


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(repr(str(tmp_path)))} is a directory; "
                                          rf"expected a TOML file$"):
        load_config(tmp_path)


def test_a_missing_config_file(tmp_path):
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(repr(str(path)))} does not exist$"):
        load_config(path)


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = = 1\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid TOML: "):
        load_config(path)


@pytest.mark.parametrize("content,overrides,expected", [
    (b"\x00\xff\xfe", [], "c.toml' is not a UTF-8 TOML text file (NUL byte at offset 0: binary data)"),
    (DENSE.encode(), ["--set", "training.lr=inf"], "training.lr: Input should be a finite number (got inf)"),
])
def test_the_cli_prints_one_line_and_exits_2(tmp_path, content, overrides, expected):
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "stablenet.app.cli", "train", str(path), *overrides,
                           "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "run").exists()


# -- config_differences ----------------------------------------------------------------------------

def test_config_differences_of_two_real_configs(dense):
    saved = load(dense).model_dump(mode="json")
    current = load(dense, "training.lr=0.1", "model.blocks.0.steps=32", "data.data_dir='/elsewhere'",
                   "multilevel.levels=1", "multilevel.epochs_per_level=2").model_dump(mode="json")
    assert config_differences(saved, current) == [
        "model.blocks.0.steps: 4 in the run, 32 now",
        "training.lr: 0.01 in the run, 0.1 now",
        'multilevel: null in the run, {"levels": 1, "epochs_per_level": 2, "start_steps": null} now',
    ]
    assert config_differences(saved, saved) == []
    assert config_differences(saved, current, ignore=())[0] == 'data.data_dir: null in the run, "/elsewhere" now'


def test_config_differences_of_nested_dicts_and_lists():
    saved = {"seed": 0, "training": {"lr": 0.01, "optimizer": "adam", "nesterov": False},
             "model": {"blocks": [{"steps": 16, "T": 1.0}, {"steps": 8}], "widths": [4, 8]}}
    current = {"seed": 0, "training": {"lr": 0.1, "optimizer": "sgd", "nesterov": False, "momentum": 0.9},
               "model": {"blocks": [{"steps": 32, "T": 1}], "widths": [4, 8, 16]}}
    assert config_differences(saved, current) == [
        "training.lr: 0.01 in the run, 0.1 now",
        'training.optimizer: "adam" in the run, "sgd" now',
        "training.momentum: missing in the run, 0.9 now",
        "model.blocks.0.steps: 16 in the run, 32 now",  # T 1.0 and 1 are the same number
        'model.blocks.1: {"steps": 8} in the run, missing now',
        "model.widths.2: missing in the run, 16 now",
    ]


def test_config_differences_keys_on_one_side_and_type_changes():
    assert config_differences({"a": {"b": 1}}, {}) == ['a: {"b": 1} in the run, missing now']
    assert config_differences({}, {"a": [1]}) == ["a: missing in the run, [1] now"]
    assert config_differences({"a": {"b": 1}}, {"a": 3}) == ['a: {"b": 1} in the run, 3 now']
    assert config_differences({"a": True}, {"a": 1}) == ["a: true in the run, 1 now"]
    assert config_differences({"a": None}, {"a": 0}) == ["a: null in the run, 0 now"]
    assert config_differences({"a": "1"}, {"a": 1}) == ['a: "1" in the run, 1 now']
    assert config_differences({"a": 1}, {"a": 1.0}) == []
    assert config_differences({"a": float("nan")}, {"a": float("nan")}) == []
    assert config_differences({"a.b": 1}, {"a.b": 2}) == ["'a.b': 1 in the run, 2 now"]
    assert config_differences([1], {"a": 1}) == ['config: [1] in the run, {"a": 1} now']


def test_config_differences_ignore():
    saved = {"data": {"name": "peaks", "data_dir": "/a"}, "model": {"blocks": [{"steps": 4, "nt": 4}]}}
    current = {"data": {"name": "peaks", "data_dir": "/b"}, "model": {"blocks": [{"steps": 8, "nt": 8}]}}
    assert config_differences(saved, current) == ["model.blocks.0.steps: 4 in the run, 8 now",
                                                  "model.blocks.0.nt: 4 in the run, 8 now"]
    assert config_differences(saved, current, ignore=()) == ['data.data_dir: "/a" in the run, "/b" now',
                                                             "model.blocks.0.steps: 4 in the run, 8 now",
                                                             "model.blocks.0.nt: 4 in the run, 8 now"]
    assert config_differences(saved, current, ignore=["data.data_dir", "model.blocks.0.nt"]) == [
        "model.blocks.0.steps: 4 in the run, 8 now"]
    assert config_differences(saved, current, ignore={"data", "model.blocks"}) == []  # whole subtrees
    missing_dir = {"data": {"name": "peaks"}, "model": saved["model"]}
    assert config_differences(missing_dir, saved) == []  # data_dir on one side only: still ignored


def test_parse_config_still_rejects_the_old_errors():
    with pytest.raises(ConfigError, match="model: required key is missing"):
        parse_config({})
