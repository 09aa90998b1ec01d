"""The source tree keeps the shape the README describes: small modules, dev tools outside the
installed package."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 800
FOLDERS = ("lib", "storage", "hypervisor", "rapi", "tools")


def test_no_module_is_longer_than_800_lines():
    long = {str(p.relative_to(ROOT)): n for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_dev_tools_are_not_in_the_installed_package():
    installed = {p.stem for folder in ("lib", "storage", "hypervisor", "rapi") for p in (ROOT / folder).rglob("*.py")}
    assert not installed & {"devcluster", "testguest"}
    assert (ROOT / "tools/genet_dev/commands.py").is_file() and (ROOT / "tools/genet_dev/testguest.py").is_file()
