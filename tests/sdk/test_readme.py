"""The SDK README runs as printed: its Python blocks, in order, as one program against the
real gateway (only the URL is changed, to this suite's port), from a folder holding
``dakghar-demo.key`` as ``make run`` leaves it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.sdk.conftest import Live

README = Path(__file__).parents[2] / "sdk" / "python" / "README.md"


def test_readme_python_blocks_run_against_the_gateway(live: Live) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 10
    program = "\n".join(blocks).replace("http://127.0.0.1:8080", live.url)
    done = subprocess.run([sys.executable, "-c", program], cwd=live.data_dir,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "delivered ['queued', 'sending', 'sent', 'delivered']" in out
    assert "2 [(2, 'invalid_number')]" in out
    assert "422 invalid_number" in out and "approved True" in out
    assert "\n400\n" in out  # the forged webhook is refused
