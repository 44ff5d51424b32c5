"""Every script in examples/ runs (in its quick mode), so none of them can rot.  An example that
needs a data package skips, naming it, where the package is not installed."""

import subprocess
import sys
from pathlib import Path

import pytest

from stablenet.data.images import FASHION_MNIST_DIR

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
#: examples that read installed data: stem -> (directory, how to install it)
NEEDS_DATA = {"fashion_mnist_conv": (FASHION_MNIST_DIR, "apt-get install -y dataset-fashion-mnist")}


def test_there_are_examples():
    assert len(EXAMPLES) >= 3
    assert set(NEEDS_DATA) <= {p.stem for p in EXAMPLES}


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    if script.stem in NEEDS_DATA:
        directory, install = NEEDS_DATA[script.stem]
        if not Path(directory).is_dir():
            pytest.skip(f"{script.name} needs {directory}, not found ({install})")
    args = [sys.executable, str(script), "--quick"]
    if "--out" in script.read_text():
        args += ["--out", str(tmp_path)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
