"""Every shell command of the README runs (marked blocks, and the quickstart run command)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(marker: str) -> list[str]:
    return re.findall(rf"<!-- {marker} -->\n```bash\n(.*?)```", README, flags=re.S)


COMMANDS = [line for block in _blocks("readme-test") for line in block.splitlines() if line]
RUN = _blocks("run-command")[0].split("&&", 1)[1].strip()  # the install part is CI's job


def test_readme_has_its_two_setup_commands():
    assert "pip install -e ." in _blocks("run-command")[0]
    assert "pytest" in _blocks("test-command")[0]
    assert len(COMMANDS) >= 5


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / "scenarios").symlink_to(ROOT / "scenarios")
    return d


@pytest.mark.parametrize("command", [RUN, *COMMANDS])
def test_readme_command_runs(command, workdir):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(command, shell=True, cwd=workdir, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
