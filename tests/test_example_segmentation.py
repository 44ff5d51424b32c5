"""examples/segmentation.py runs in its quick mode and learns something (tests/test_examples.py
runs every example too; this one also checks what it prints)."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "examples" / "segmentation.py"


def test_segmentation_example_quick():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    match = re.search(r"test pixel accuracy ([0-9.]+) \(majority class ([0-9.]+)\)", proc.stdout)
    assert match, proc.stdout
    accuracy, chance = float(match.group(1)), float(match.group(2))
    assert accuracy > chance + 0.03, proc.stdout
