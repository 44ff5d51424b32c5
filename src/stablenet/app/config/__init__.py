"""Typed, documented training configuration (TOML), validated with pydantic.

A configuration has the tables ``[data]``, ``[model]`` and ``[training]`` and optional ones
(``[data.augment]``, ``[training.adversarial]``, ``[multilevel]``, ``[parallel]``); every key is
listed by ``stablenet config-docs`` (and in ``docs/configuration.md``, generated from this schema):

```toml
seed = 0

[data]
name = "peaks"            # peaks, ellipses, swiss_roll, moons, circles, digits, fashion_mnist
# options = { n_train_per_class = 1000 }

[model]
opening = "duplicate"     # or "linear"
[[model.blocks]]
dynamics = "hamiltonian"
width = 8
T = 5.0
steps = 32
nt = 32
method = "verlet"

[training]
epochs = 40
optimizer = "adam"
lr = 0.01

# [multilevel]            # optional: train 8 → 16 → 32 steps (see MultilevelConfig)
# levels = 3
# epochs_per_level = [20, 10, 10]
```

Unknown keys, wrong types and out-of-range values are errors that name the key; the CLI prints
them as one line.  What makes a valid *network* is decided by the library, not here: the
``[model]`` tables convert to :mod:`stablenet.specs` and validate by building the spec.  Every number must be finite (``inf`` and ``nan``, valid TOML floats, are
refused), every count is at most :data:`MAX_COUNT` (widths: :data:`MAX_WIDTH`) and the seed lies in
0 … :data:`MAX_SEED`.
"""

# the modules, one concept each: base (bounds, strict tables, registry choices), model ([model]),
# schema (the other tables and the rules between tables), errors (the one-line report), loading
# (TOML, --set, saved config.json, differences), reference (the Markdown of config-docs)

from .base import MAX_COUNT, MAX_PIXELS, MAX_SEED, MAX_THREADS, MAX_WIDTH, Choices
from .errors import ConfigError, format_error
from .loading import (apply_overrides, config_differences, load_config, parse_config, parse_saved_config,
                      read_config_text)
from .model import (CONV_MODEL_KEYS, DENSE_MODEL_KEYS, MODEL_KINDS, TABLE_MODES, BlockConfig, ConvModelConfig,
                    DenseModelConfig, ModelConfig)
from .reference import config_reference
from .schema import (IMAGE_DATASETS, NEWTON_OPTIMIZERS, TRAINING_ATTACKS, AdversarialConfig, AugmentConfig, Config, DataConfig, MultilevelConfig,
                     ParallelConfig, TrainingConfig)

__all__ = [
    "MAX_COUNT", "MAX_PIXELS", "MAX_SEED", "MAX_THREADS", "MAX_WIDTH", "Choices", "ConfigError", "format_error",
    "apply_overrides", "config_differences", "load_config", "parse_config", "parse_saved_config",
    "read_config_text", "CONV_MODEL_KEYS", "DENSE_MODEL_KEYS", "MODEL_KINDS", "TABLE_MODES", "BlockConfig",
    "ConvModelConfig", "DenseModelConfig", "ModelConfig", "config_reference", "IMAGE_DATASETS",
    "NEWTON_OPTIMIZERS", "TRAINING_ATTACKS", "AdversarialConfig", "AugmentConfig", "Config", "DataConfig", "MultilevelConfig", "ParallelConfig",
    "TrainingConfig",
]
