"""Installs genet: the core package and its backends, the daemons and the gnt-* commands, with
their man pages and bash completion (made by build_docs, tools/genet_build.py)."""
import re
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build import build
from setuptools.dist import Distribution

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
import genet_build  # noqa: E402  (the build step: a module of the source tree, not installed)

VERSION = re.search(r'^__version__ = "([^"]+)"', Path("lib/__init__.py").read_text(), re.MULTILINE).group(1)

# the bundled OS definitions (noop, image) go to share/genet/os/NAME
OS_DIR = "share/genet/os"
OS_FILES = [(f"{OS_DIR}/{d.name}", [str(f) for f in sorted(d.iterdir()) if f.is_file()])
            for d in sorted(Path("os").iterdir()) if d.is_dir()]

# where the packages live: every folder with an __init__.py below these roots is one
ROOTS = {"genet": "lib", "genet.hypervisor": "hypervisor", "genet.storage": "storage", "genet.rapi": "rapi",
         "genet.daemons": "daemons"}
PACKAGES = {".".join((name, *init.parent.relative_to(folder).parts)): str(init.parent)
            for name, folder in ROOTS.items() for init in sorted(Path(folder).rglob("__init__.py"))}

REQUIRES = ["twisted", "pyopenssl", "cryptography", "pyparsing", "qemu.qmp",
            "paramiko", "bitarray", "service-identity", "prometheus-client", "orjson", "numpy", "etcd3gw",
            "pyghmi"]

COMMANDS = [
    "gnt-cluster = genet.cli.gnt_cluster:main",
    "gnt-node = genet.cli.gnt_node:main",
    "gnt-job = genet.cli.gnt_job:main",
    "gnt-debug = genet.cli.gnt_debug:main",
    "gnt-filter = genet.cli.gnt_filter:main",
    "gnt-instance = genet.cli.gnt_instance:main",
    "gnt-os = genet.cli.gnt_os:main",
    "gnt-group = genet.cli.gnt_group:main",
    "gnt-network = genet.cli.gnt_network:main",
    "gnt-backup = genet.cli.gnt_backup:main",
    "gnt-storage = genet.cli.gnt_storage:main",
    "hbal = genet.htools.hbal:main",
    "hscan = genet.htools.hscan:main",
    "hinfo = genet.htools.hinfo:main",
    "hroller = genet.htools.hroller:main",
    "hcheck = genet.htools.hcheck:main",
    "hail = genet.htools.hail:main",
    "hspace = genet.htools.hspace:main",
    "genet-masterd = genet.daemons.masterd:main",
    "genet-noded = genet.daemons.noded:main",
    "genet-rapi = genet.daemons.rapi:main",
    "genet-watcher = genet.daemons.watcher:main",
    "genet-daemon = genet.daemons.daemon:main",
    "genet-prepare-node-join = genet.daemons.prepare_node_join:main",
    "genet-oob-ipmi = genet.daemons.oob_ipmi:main",
    "genet-oob-script = genet.daemons.oob_script:main",
]

DOCS = genet_build.Docs(man=Path("man"), commands=COMMANDS, packages=PACKAGES, bundled_os=OS_DIR, version=VERSION)


class Build(build):
    """build, then build_docs (which wheels and editable installs run alike)."""
    sub_commands = build.sub_commands + [("build_docs", None)]


class GenetDistribution(Distribution):
    """setuptools' editable install asks has_data() before it installs data files, a name
    distutils spells has_data_files; without this `pip install -e` installs none of them."""

    def has_data(self) -> bool:
        return self.has_data_files()


setup(
    name="genet",
    version=VERSION,
    description="A cluster manager for KVM virtual machines in the mould of Ganeti",
    python_requires=">=3.11",
    package_dir=PACKAGES,
    packages=list(PACKAGES),
    data_files=OS_FILES + DOCS.data_files(),
    install_requires=REQUIRES,
    # build_docs imports the commands to read their parsers: an isolated build needs what they import
    setup_requires=REQUIRES,
    entry_points={"console_scripts": COMMANDS},
    cmdclass={"build": Build, "build_docs": genet_build.build_docs_command(DOCS)},
    distclass=GenetDistribution,
)
