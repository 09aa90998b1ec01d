"""gnt-node powercycle on the node itself: a hard restart that genet-noded schedules a few seconds
after answering (so the master records the answer first), as Ganeti's node_powercycle.

A node that owns its machine (its state root is ``/``) reboots the machine as Ganeti does: sysrq
``b`` (an immediate reboot, no sync), else ``reboot -n -f``. A node whose state lives below a root
of its own (``$GENET_ROOT``: a dev or loopback cluster node) shares the machine with other nodes,
and rebooting it would take them all down; what is that node's own is its daemons, so those are
restarted: genet-noded, and genet-masterd and genet-rapi where they run. Its guests are separate
processes and keep running; the restarted noded finds them again. The command says which of the
two it scheduled; it never claims a reboot it does not do.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from genet import paths

DELAY = 5                      # seconds between the answer and the restart (Ganeti's)
REBOOT, RESTART = "reboot", "restart-daemons"
SYSRQ = Path("/proc/sysrq-trigger")


def plan(root: Path) -> str:
    """What a powercycle of the node whose state root is ``root`` does."""
    return REBOOT if root == Path("/") else RESTART


def describe(action: str, root: Path) -> str:
    if action == REBOOT:
        return f"Reboot scheduled in {DELAY} seconds"
    return (f"Restart of the node daemons scheduled in {DELAY} seconds; the machine is not rebooted: this node's"
            f" state root is {root}, so it shares the machine with other nodes")


def schedule() -> str:
    """Start the detached helper that acts in DELAY seconds; what it will do, in words."""
    root = paths.root()
    action = plan(root)
    with open(paths.log_file("genet-noded"), "ab") as log:      # the helper's failures land there
        spawn([sys.executable, "-m", "genet.powercycle", action], log)
    return describe(action, root)


def spawn(argv: list[str], log) -> None:
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                     start_new_session=True, close_fds=True)


def reboot() -> None:
    """Reboot the machine at once, as Ganeti's LinuxPowercycle."""
    try:
        SYSRQ.write_bytes(b"b")
    except OSError as err:
        print(f"cannot write {SYSRQ} ({err.strerror}); running reboot -n -f", flush=True)
        subprocess.run(["reboot", "-n", "-f"], check=False)


def restart_daemons() -> None:
    """Stop this node's daemons (the master's too where they run) and start them again."""
    from genet import daemon_util
    master = daemon_util.stop_master_daemons()
    daemon_util.stop("genet-noded")
    daemon_util.start("genet-noded")
    if master:
        daemon_util.start_master_daemons()


def main(argv: list[str]) -> int:
    time.sleep(DELAY)
    print(f"powercycle: {argv[0]} of node {paths.node_name()}", flush=True)
    {REBOOT: reboot, RESTART: restart_daemons}[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
