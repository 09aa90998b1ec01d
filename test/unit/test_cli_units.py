"""gnt-* list as Ganeti's CLI does it: sizes (--units), missing values, unknown fields, and
arguments that are names, globs or a filter."""
from __future__ import annotations

import argparse

import pytest

from genet import errors
from genet.cli import base
from genet.cli.units import default_unit, format_unit


@pytest.mark.parametrize("mib, unit, shown", [
    (512, "h", "512M"), (1023, "h", "1023M"), (1024, "h", "1.0G"), (1536, "h", "1.5G"),
    (1024 * 1024 - 1, "h", "1024.0G"), (1024 * 1024, "h", "1.0T"), (3 * 1024 * 1024 + 512 * 1024, "h", "3.5T"),
    (2048, "m", "2048"), (2048, "g", "2.0"), (100, "g", "0.1"), (512, "t", "0.0"), (0, "h", "0M"),
])
def test_format_unit_matches_ganetis_formatunit(mib, unit, shown):
    assert format_unit(mib, unit) == shown


def test_an_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="unknown unit 'k'"):
        format_unit(1, "k")


def test_the_default_unit_is_scaled_for_people_and_mib_for_scripts():
    assert (default_unit(None), default_unit("|"), default_unit("")) == ("h", "m", "h")


class _Client:
    """Answers one query with fixed rows (the shape genet.query returns)."""

    def __init__(self, fields: list[dict], data: list[list]):
        self.answer = {"fields": fields, "data": data}

    def query(self, what, fields, qfilter=None):
        self.asked = qfilter
        return self.answer


def _list(capsys, argv: list[str], client: _Client) -> tuple[int, list[str], str]:
    parser = argparse.ArgumentParser()
    base.add_list_options(parser, "NAME")
    code = base.run_list(parser.parse_args(argv), "node", ["name", "mfree"], client=client)
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


_FIELDS = [{"name": "name", "title": "Node", "kind": "text", "doc": ""},
           {"name": "mfree", "title": "MFree", "kind": "unit", "doc": ""},
           {"name": "ctotal", "title": "CTotal", "kind": "number", "doc": ""}]
_ROWS = [[[0, "node1"], [0, 3072], [0, 4]], [[0, "node2"], [2, None], [4, None]]]


def test_list_shows_sizes_scaled_by_default_and_in_mib_with_a_separator(capsys):
    client = _Client(_FIELDS, _ROWS)
    assert _list(capsys, ["-o", "name,mfree,ctotal"], client)[1] == [
        "Node  MFree CTotal", "node1  3.0G      4", "node2     ?      *"]
    assert _list(capsys, ["-o", "name,mfree,ctotal", "--separator=|", "--no-headers"], client)[1] == \
        ["node1|3072|4", "node2|?|*"]
    assert _list(capsys, ["-o", "name,mfree,ctotal", "--units", "g", "--no-headers"], client)[1] == \
        ["node1 3.0 4", "node2   ? *"]


def test_list_verbose_says_why_a_value_is_missing(capsys):
    client = _Client(_FIELDS, _ROWS)
    lines = _list(capsys, ["-o", "name,mfree,ctotal", "-v", "--no-headers", "--separator=,"], client)[1]
    assert lines == ["node1,3072,4", "node2,(nodata),(offline)"]


def test_list_warns_about_an_unknown_field_shows_it_and_exits_14(capsys):
    fields = _FIELDS[:1] + [{"name": "bogus", "title": "bogus", "kind": "unknown", "doc": "Unknown field 'bogus'"}]
    code, lines, err = _list(capsys, ["-o", "name,bogus", "--no-headers"],
                             _Client(fields, [[[0, "node1"], [1, None]]]))
    assert (code, lines) == (14, ["node1 ??"])
    assert err == "Warning: Queried for unknown fields bogus\n"


def test_units_outside_ganetis_choices_are_refused_by_the_parser():
    parser = argparse.ArgumentParser()
    base.add_list_options(parser, "NAME")
    with pytest.raises(SystemExit):
        parser.parse_args(["--units", "k"])


def test_list_takes_globs_and_a_lone_filter_argument_and_checks_only_plain_names(capsys):
    client = _Client(_FIELDS[:1], [])
    assert _list(capsys, ["-o", "name", "web*"], client)[0] == 0
    assert client.asked == ["|", ["=~", "name", r"^web[^.]*(\..*)?$"]]
    assert _list(capsys, ["-o", "name", 'name == "x"'], client)[0] == 0
    assert client.asked == ["=", "name", "x"]
    with pytest.raises(errors.OpPrereqError, match="node\\(s\\) not found: nodeX"):
        _list(capsys, ["-o", "name", "web*", "nodeX"], client)


def test_timestamps_show_as_ganetis_formattime(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time
    time.tzset()
    try:
        assert base.format_value(1764192325.5, "timestamp") == "2025-11-26 21:25:25"
    finally:
        monkeypatch.undo()
        time.tzset()
