"""The source tree keeps the shape the README describes: small modules, dev tools outside the
installed package."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 800
FOLDERS = ("lib", "storage", "hypervisor", "rapi", "daemons", "tools")


def test_no_module_is_longer_than_800_lines():
    long = {str(p.relative_to(ROOT)): n for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_dev_tools_are_not_in_the_installed_package():
    installed = {p.stem for folder in ("lib", "storage", "hypervisor", "rapi") for p in (ROOT / folder).rglob("*.py")}
    assert not installed & {"devcluster", "testguest"}
    assert (ROOT / "tools/genet_dev/commands.py").is_file() and (ROOT / "tools/genet_dev/testguest.py").is_file()


def test_every_daemon_and_node_command_starts_from_a_thin_entry_point_in_daemons():
    """When setup.py installs a genet-* command, it runs main() of a genet.daemons module, and
    that module is start-up wiring only: short, and no classes of its own."""
    scripts = dict(re.findall(r'"(genet-[\w-]+) = ([\w.]+):main"', (ROOT / "setup.py").read_text()))
    assert {"genet-masterd", "genet-noded", "genet-rapi", "genet-watcher", "genet-daemon",
            "genet-prepare-node-join"} <= set(scripts)
    assert {name: module for name, module in scripts.items() if not module.startswith("genet.daemons.")} == {}
    for module in scripts.values():
        source = (ROOT / "daemons" / (module.rsplit(".", 1)[1] + ".py")).read_text()
        tree = ast.parse(source)
        assert len(source.splitlines()) < 100, module
        assert [n.name for n in tree.body if isinstance(n, ast.ClassDef)] == [], module
        assert "main" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, module


def test_the_daemons_logic_modules_parse_no_command_line():
    """What the daemons run stays in genet proper, without a main() or argparse of its own."""
    modules = ("lib/masterd.py", "lib/noded.py", "rapi/server.py", "lib/watcher.py", "lib/bootstrap.py")
    parsing = sorted(m for m in modules if re.search(r"^def main\(|^import argparse|__main__",
                                                     (ROOT / m).read_text(), re.MULTILINE))
    assert parsing == []


def test_every_test_module_has_a_name_of_its_own():
    """pytest imports test modules by their basename: two of one name stop the whole collection."""
    from collections import Counter
    names = Counter(path.name for path in (Path(__file__).parents[1]).rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
