"""The application floor: what turns the library into the ``stablenet`` command.

Everything here may import the library (:mod:`stablenet` and its sub-packages); nothing in the
library imports from here, and ``import stablenet`` loads none of it (nor pydantic, matplotlib or
tqdm, which only the application needs).

* :mod:`.config` — the typed TOML schema (pydantic), ``--set`` overrides, the config reference;
* :mod:`.training` — ``train()`` from a config into a run directory, ``load_run``;
* :mod:`.rundir` — run directories: marker, owned files, the one-writer lock;
* :mod:`.checkpoint` — safetensors + JSON checkpoints and weights files;
* :mod:`.plots`, :mod:`.figures` — a run's figures and the stability figures;
* :mod:`.report` — ``stablenet analyze RUN_DIR``;
* :mod:`.experiments` — one module per seed experiment;
* :mod:`.io` — atomic file writes;
* :mod:`.cli` — the ``stablenet`` command.
"""
