"""Shared by the htools tests: generated clusters, the two hbal programs, their output read back.

The clusters come from bench/htools.py's generator (deterministic for a size and seed); genet's
hbal is the one installed next to the running Python, so a fresh clone's venv is what is tested;
Ganeti's hbal 3.0.2 is the reference it is compared with.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench" / "htools.py"
REAL_HTOOLS = Path("/usr/lib/ganeti/3.0/usr/bin")
REAL_HBAL = REAL_HTOOLS / "hbal"
GENET_HBAL = Path(sys.executable).parent / "hbal"
GANETI_DATA = Path(__file__).resolve().parent / "ganeti_data"      # Ganeti 3.0.2's test clusters
# running instances hold their memory on the primary (Ganeti's instanceRunning-like states)
MEMORY_STATUSES = ("running", "ERROR_up", "ERROR_nodedown", "ERROR_nodeoffline", "ERROR_wrongnode")


def bench():
    """bench/ is not a package: load the script as module bench_htools (once)."""
    if "bench_htools" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_htools", BENCH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_htools"] = module        # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["bench_htools"]


def cluster_text(nodes: int, seed: int) -> str:
    b = bench()
    return b.to_text(b.generate(nodes, seed))


def require_real(tool: str, path: Path | None = None) -> Path:
    """Ganeti's program ``tool`` (hbal, hroller...; at ``path`` if not with the others): the
    reference, never skipped."""
    path = REAL_HTOOLS / tool if path is None else path
    if not os.access(path, os.X_OK):
        pytest.fail(f"Ganeti's {tool} is missing at {path}: the htools comparison tests need it; "
                    "autotools/install-deps installs it (Debian package ganeti-htools-3.0)")
    return path


def programs(tool: str, real: Path | None = None) -> tuple[Path, Path]:
    """Ganeti's ``tool`` and genet's, both required."""
    genet = Path(sys.executable).parent / tool
    assert genet.exists(), f"genet's {tool} is not installed at {genet}"
    return require_real(tool, real), genet


def require_real_hbal() -> Path:
    return require_real("hbal")


def run(program: Path, *args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The program as a user runs it, C locale so that both tools print the same way."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    return subprocess.run([str(program), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL, cwd=cwd)


def initial_score(stdout: str) -> str:
    m = re.search(r"^Initial (?:score:|coefficients: overall) (\S+)", stdout, re.M)
    assert m, f"no initial score in:\n{stdout}"
    return m.group(1)


def final_score(stdout: str) -> str:
    """The score after the last move (the initial one when no move was made)."""
    m = re.search(r"^Cluster score improved from \S+ to (\S+)", stdout, re.M)
    if m:
        return m.group(1)
    assert "No solution found" in stdout or "already well balanced" in stdout, stdout
    return initial_score(stdout)


def solution_length(stdout: str) -> int:
    return len(re.findall(r"^\s+\d+\. \S+ \S+ => \S+ ", stdout, re.M))


def sections(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.rstrip("\n").split("\n\n")]


def join(secs: list[list[str]]) -> str:
    """The file of these sections (an empty section is nothing between two separators)."""
    return "\n".join("".join(line + "\n" for line in lines) for lines in secs)


def with_free_memory_recomputed(text: str) -> str:
    """The file with each node's free memory its total minus its own minus its running primaries.

    hbal -S (Ganeti's as genet's) writes the free memory read at the start, not the one after the
    moves, so a saved file read again counts a moved instance's memory twice; for a generated
    cluster (where free memory is exactly that sum) this gives the state the balancer ended in.
    """
    secs = sections(text)
    used: dict[str, int] = {}
    for line in secs[2]:
        f = line.split("|")
        if f[4] in MEMORY_STATUSES:
            used[f[6]] = used.get(f[6], 0) + int(f[1])
    nodes = []
    for line in secs[1]:
        f = line.split("|")
        f[3] = str(int(f[1]) - int(f[2]) - used.get(f[0], 0))
        nodes.append("|".join(f))
    secs[1] = nodes
    return join(secs)


def mixed_cluster(nodes: int, seed: int) -> str:
    """A generated cluster with some instances offline, some stopped, some on shared storage.

    Instances turned sharedfile/rbd lose their secondary but the nodes keep the disk space, and
    stopped ones keep their memory counted: the loader's inconsistency warnings are part of it.
    """
    secs = sections(cluster_text(nodes, seed))
    insts = []
    for k, line in enumerate(secs[2]):
        f = line.split("|")
        if f[8] == "drbd" and k % 7 == 0:
            f[8], f[7] = ("rbd" if k % 2 else "sharedfile"), ""
        if k % 11 == 3:
            f[4] = "ADMIN_offline"
        elif k % 13 == 5:
            f[4] = "ADMIN_down"
        elif k % 17 == 6:
            f[4] = "ERROR_down"
        insts.append("|".join(f))
    secs[2] = insts
    return join(secs)


HAND_UUID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
# a small hand-written cluster: every template that can be moved or not, two racks, a node
# marked offline in the file, shorter old-format lines, an instance with spindles
HAND_CLUSTER = f"""\
default|{HAND_UUID}|preferred||

n1|32768|1024|12288|409600|204800|8|M|{HAND_UUID}|2|rack:a|N|2|1|1.0
n2|32768|1024|28672|409600|348160|8|N|{HAND_UUID}|2|rack:a|N|2|1|1.0
n3|65536|2048|61440|819200|757760|16|N|{HAND_UUID}|4|rack:b|N|4|2|2.0
n4|65536|2048|63488|819200|819200|16|N|{HAND_UUID}|4|rack:b
n5|16384|1024|15360|204800|204800|4|Y|{HAND_UUID}

i1|8192|51200|2|running|Y|n1|n2|drbd|svc:web|1|-|N
i2|4096|51200|2|running|Y|n1|n3|drbd|svc:web|1|-|N
i3|4096|102400|4|ADMIN_down|Y|n1||plain|svc:db|2|-|N
i4|4096|10240|1|running|Y|n2||sharedfile|svc:db
i5|2048|10240|1|ADMIN_offline|N|n3||rbd||1
i6|2048|10240|1|running|Y|n4||diskless||1|-
i7|4096|51200|2|running|Y|n1|n3|drbd|svc:web|3|2|N
i8|1024|10240|1|ERROR_up|Y|n2||file||1|-|N

htools:nlocation:rack
htools:iextags:svc
"""
