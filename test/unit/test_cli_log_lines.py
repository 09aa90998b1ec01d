"""Job log lines as the gnt-* commands print them (Ganeti's shape: ctime, then the message)."""
from __future__ import annotations

import calendar
import time

import pytest

from genet.cli.base import parse_log_line, print_log_entry


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC for the test, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("day", [6, 16])
def test_a_log_line_splits_into_its_stamp_and_message_on_any_day(utc, capsys, day):
    """When a job logs on a one-digit day of the month (ctime pads it: "Sun Dec  6"), the line
    still splits into the entry's stamp and its whole message, spaces included."""
    ts = calendar.timegm((2026, 12, day, 15, 29, 25))
    message = "Delay round 1 of 3:  sleeping 0.3s"
    print_log_entry([1, [ts, 250], "message", message])
    line = capsys.readouterr().out.rstrip("\n")
    assert line.startswith(f"{'Sun' if day == 6 else 'Wed'} Dec {day:>2} 15:29:25 2026 ")
    assert parse_log_line(line) == (time.ctime(ts), message)


@pytest.mark.parametrize("line", ["Output from job 5 follows", "-----", "", "Sun Dec 6 15:29:25 2026 x"])
def test_other_lines_are_not_log_lines(line):
    """When a line is not "ctime message" (an unpadded day included), it is not taken for one."""
    assert parse_log_line(line) is None
