"""Installs genet: the core package and its backends, the daemons and the gnt-* commands."""
from pathlib import Path

from setuptools import setup

# the bundled OS definitions (noop, image) go to share/genet/os/NAME
OS_FILES = [(f"share/genet/os/{d.name}", [str(f) for f in sorted(d.iterdir()) if f.is_file()])
            for d in sorted(Path("os").iterdir()) if d.is_dir()]

# where the packages live: every folder with an __init__.py below these roots is one
ROOTS = {"genet": "lib", "genet.hypervisor": "hypervisor", "genet.storage": "storage", "genet.rapi": "rapi",
         "genet.daemons": "daemons"}
PACKAGES = {".".join((name, *init.parent.relative_to(folder).parts)): str(init.parent)
            for name, folder in ROOTS.items() for init in sorted(Path(folder).rglob("__init__.py"))}

setup(
    name="genet",
    version="0.1.0",
    description="A cluster manager for KVM virtual machines in the mould of Ganeti",
    python_requires=">=3.11",
    package_dir=PACKAGES,
    packages=list(PACKAGES),
    data_files=OS_FILES,
    install_requires=["twisted", "pyopenssl", "cryptography", "pyparsing", "qemu.qmp",
                      "paramiko", "bitarray", "service-identity", "prometheus-client", "orjson"],
    entry_points={
        "console_scripts": [
            "gnt-cluster = genet.cli.gnt_cluster:main",
            "gnt-node = genet.cli.gnt_node:main",
            "gnt-job = genet.cli.gnt_job:main",
            "gnt-debug = genet.cli.gnt_debug:main",
            "gnt-instance = genet.cli.gnt_instance:main",
            "gnt-os = genet.cli.gnt_os:main",
            "gnt-group = genet.cli.gnt_group:main",
            "gnt-network = genet.cli.gnt_network:main",
            "gnt-backup = genet.cli.gnt_backup:main",
            "genet-masterd = genet.daemons.masterd:main",
            "genet-noded = genet.daemons.noded:main",
            "genet-rapi = genet.daemons.rapi:main",
            "genet-watcher = genet.daemons.watcher:main",
            "genet-daemon = genet.daemons.daemon:main",
            "genet-prepare-node-join = genet.daemons.prepare_node_join:main",
        ],
    },
)
