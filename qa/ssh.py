"""Commands on the master node over SSH, with the system ``ssh`` binary.

The gnt-* commands are what an administrator types, so the suite runs them where an
administrator would: on the master, through a login. The system ssh brings the user's own
configuration (keys, agents, jump hosts, known hosts); ``--ssh-option`` adds to it.
"""
from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from typing import Sequence

from qa.report import CheckFailed


@dataclass
class Result:
    """What a command did: its exit status and both outputs."""
    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        output = (self.stderr.strip() or self.stdout.strip())[-600:]
        return f"'{shlex.join(self.argv)}' exited {self.returncode}: {output}"


class SshRunner:
    """Runs a command line on ``destination`` (``user@host``) and returns its Result."""

    def __init__(self, destination: str, options: Sequence[str] = (), timeout: float = 600,
                 ssh: str = "ssh"):
        self.destination = destination
        self.options = list(options)
        self.timeout = timeout
        self.ssh = ssh

    def command(self, argv: Sequence[str]) -> list[str]:
        """The local ssh invocation for ``argv``: BatchMode (never a password prompt), the
        user's options, and the remote command quoted for the remote shell."""
        base = [self.ssh, "-o", "BatchMode=yes"]
        for option in self.options:
            base += ["-o", option]
        return [*base, self.destination, "--", shlex.join(argv)]

    def run(self, argv: Sequence[str], check: bool = True, timeout: float | None = None) -> Result:
        """``argv`` on the master; with ``check``, an exit status other than 0 is CheckFailed."""
        try:
            proc = subprocess.run(self.command(argv), capture_output=True, text=True,
                                  timeout=timeout or self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"'{shlex.join(argv)}' did not end within {timeout or self.timeout:.0f} s") \
                from None
        result = Result(list(argv), proc.returncode, proc.stdout, proc.stderr)
        if proc.returncode == 255 and not proc.stdout:
            raise CheckFailed(f"ssh {self.destination} failed: {proc.stderr.strip()[-400:]}")
        if check and proc.returncode != 0:
            raise CheckFailed(result.explain())
        return result
