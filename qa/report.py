"""What a QA run says: one line per check, and the summary that decides the exit status.

Every check ends in exactly one line, ``PASS block: name``, ``FAIL block: name: reason`` or
``SKIP block: name: reason``, so a run's output can be read by eye and by grep alike. Skips do
not count: a cluster without a second node or without drbd is not a failing cluster. The last
line is always ``N passed, M failed``.
"""
from __future__ import annotations

import sys
from typing import TextIO


class Skip(Exception):
    """The check (or the whole block) does not apply to this cluster; the reason says why."""


class CheckFailed(Exception):
    """The cluster did something other than what the check expects; the message says what."""


class BlockAborted(Exception):
    """A check the rest of its block depends on failed (already reported): leave the block."""


class Reporter:
    """Counts the outcomes of checks and prints a line for each."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def passed_check(self, block: str, name: str) -> None:
        self.passed += 1
        self._line(f"PASS {block}: {name}")

    def failed_check(self, block: str, name: str, reason: str) -> None:
        self.failed += 1
        self._line(f"FAIL {block}: {name}: {one_line(reason)}")

    def skipped_check(self, block: str, name: str, reason: str) -> None:
        self.skipped += 1
        self._line(f"SKIP {block}: {name}: {one_line(reason)}")

    def check(self, block: str, name: str, required: bool = False) -> "Check":
        """``with reporter.check(block, name):`` — the body passes unless it raises.

        With ``required``, a failure also raises BlockAborted so that the checks that build on
        this one are not run (and not reported as failures of their own)."""
        return Check(self, block, name, required)

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"

    def finish(self) -> int:
        """Print the summary line; the exit status of the run."""
        if self.skipped:
            self._line(f"({self.skipped} skipped)")
        self._line(self.summary())
        return 0 if self.failed == 0 else 1


class Check:
    """The context manager behind Reporter.check: turns the body's outcome into one line."""

    def __init__(self, reporter: Reporter, block: str, name: str, required: bool):
        self.reporter, self.block, self.name, self.required = reporter, block, name, required
        self.ok = False

    def __enter__(self) -> "Check":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            self.ok = True
            self.reporter.passed_check(self.block, self.name)
            return False
        if issubclass(kind, Skip):
            self.reporter.skipped_check(self.block, self.name, str(exc))
            if self.required:
                raise BlockAborted(self.name) from exc
            return True
        if issubclass(kind, BlockAborted) or not issubclass(kind, Exception):
            return False        # a nested abort, KeyboardInterrupt: not this check's business
        self.reporter.failed_check(self.block, self.name, describe(exc))
        if self.required:
            raise BlockAborted(self.name) from exc
        return True


def describe(exc: BaseException) -> str:
    """The reason printed after FAIL: the message, with the type when it is not ours."""
    if isinstance(exc, (CheckFailed, AssertionError)) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def one_line(text: str, limit: int = 800) -> str:
    """Reasons stay on their line: newlines folded, very long output cut."""
    flat = " | ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."
