"""Tests for genet.qfilter: the --filter language, its list form and evaluation."""

from __future__ import annotations

import re

import pytest

from genet.qfilter import FilterError, compile_filter, glob_pattern, make_filter, names_filter, parse_filter

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is optional
    given = None


# ---------------------------------------------------------------------------
# Parsing: operators

@pytest.mark.parametrize("text, expected", [
    ('name == "node1"', ["=", "name", "node1"]),
    ('name != "node1"', ["!=", "name", "node1"]),
    ("mem < 512", ["<", "mem", 512]),
    ("mem <= 512", ["<=", "mem", 512]),
    ("mem > 512", [">", "mem", 512]),
    ("mem >= 512", [">=", "mem", 512]),
    ("name =~ /^web/", ["=~", "name", "^web"]),
    ("name !~ /^web/", ["!", ["=~", "name", "^web"]]),
    ('"web" in tags', ["=[]", "tags", "web"]),
    ('"web" not in tags', ["!", ["=[]", "tags", "web"]]),
    ("admin_up", ["?", "admin_up"]),
    ("not admin_up", ["!", ["?", "admin_up"]]),
])
def test_each_operator_parses_to_ganeti_list_form(text, expected):
    assert parse_filter(text) == expected


def test_operators_need_no_surrounding_whitespace():
    assert parse_filter('name=="x"and mem>=3') == [
        "&", ["=", "name", "x"], [">=", "mem", 3]]


def test_field_names_may_contain_dots_slashes_and_digits():
    assert parse_filter('nic.mode/0 == "bridged"') == [
        "=", "nic.mode/0", "bridged"]
    assert parse_filter("disk.sizes") == ["?", "disk.sizes"]
    assert parse_filter("_x9") == ["?", "_x9"]


def test_identifiers_starting_with_keywords_are_fields():
    assert parse_filter("android and order or notes") == [
        "|", ["&", ["?", "android"], ["?", "order"]], ["?", "notes"]]
    assert parse_filter("true_x or in_use") == [
        "|", ["?", "true_x"], ["?", "in_use"]]


# ---------------------------------------------------------------------------
# Parsing: precedence and grouping

def test_and_binds_tighter_than_or():
    assert parse_filter("a or b and c") == [
        "|", ["?", "a"], ["&", ["?", "b"], ["?", "c"]]]
    assert parse_filter("a and b or c") == [
        "|", ["&", ["?", "a"], ["?", "b"]], ["?", "c"]]


def test_not_binds_tighter_than_and():
    assert parse_filter("not a and b") == [
        "&", ["!", ["?", "a"]], ["?", "b"]]


def test_not_can_be_repeated():
    assert parse_filter("not not a") == ["!", ["!", ["?", "a"]]]


def test_chains_of_and_and_or_are_flattened():
    assert parse_filter("a and b and c") == [
        "&", ["?", "a"], ["?", "b"], ["?", "c"]]
    assert parse_filter("a or b or c or d") == [
        "|", ["?", "a"], ["?", "b"], ["?", "c"], ["?", "d"]]


def test_parentheses_override_precedence():
    assert parse_filter("(a or b) and c") == [
        "&", ["|", ["?", "a"], ["?", "b"]], ["?", "c"]]
    assert parse_filter("not (a or b)") == [
        "!", ["|", ["?", "a"], ["?", "b"]]]


def test_redundant_parentheses_are_transparent():
    assert parse_filter('((name == "x"))') == ["=", "name", "x"]


def test_parenthesised_group_is_not_merged_into_outer_chain():
    assert parse_filter("(a and b) and c") == [
        "&", ["&", ["?", "a"], ["?", "b"]], ["?", "c"]]


# ---------------------------------------------------------------------------
# Parsing: values

def test_single_and_double_quotes_are_equivalent():
    assert parse_filter("name == 'x y'") == parse_filter('name == "x y"')


@pytest.mark.parametrize("literal, value", [
    (r'"say \"hi\""', 'say "hi"'),
    (r"'it\'s'", "it's"),
    (r'"back\\slash"', "back\\slash"),
    (r'"tab\there"', "tab\there"),
    (r'"line\nbreak"', "line\nbreak"),
    (r'"\q"', "q"),
    ('"it\'s"', "it's"),
    ('""', ""),
])
def test_string_escapes_are_resolved(literal, value):
    assert parse_filter(f"name == {literal}") == ["=", "name", value]


def test_literal_tabs_in_strings_and_regexes_are_kept():
    assert parse_filter('name == "a\tb"') == ["=", "name", "a\tb"]
    assert parse_filter("name =~ /a\tb/") == ["=~", "name", "a\tb"]


def test_tabs_and_newlines_separate_tokens():
    assert parse_filter("a\tand\nb") == ["&", ["?", "a"], ["?", "b"]]


@pytest.mark.parametrize("literal, value", [
    ("42", 42), ("-7", -7), ("+3", 3), ("0", 0),
    ("1.5", 1.5), ("-0.25", -0.25), ("2e3", 2000.0), ("1.5E-2", 0.015),
])
def test_numbers_become_int_or_float(literal, value):
    result = parse_filter(f"mem == {literal}")
    assert result == ["=", "mem", value]
    assert type(result[2]) is type(value)


def test_true_and_false_become_booleans():
    assert parse_filter("master == true") == ["=", "master", True]
    assert parse_filter("master != false") == ["!=", "master", False]
    assert parse_filter("master == true")[2] is True


def test_numbers_are_allowed_before_in():
    assert parse_filter("3 in sizes") == ["=[]", "sizes", 3]


# ---------------------------------------------------------------------------
# Parsing: regular expressions

def test_regex_escaped_slash_becomes_plain_slash():
    assert parse_filter(r"path =~ /a\/b/") == ["=~", "path", "a/b"]


def test_regex_keeps_other_backslash_escapes():
    assert parse_filter(r"name =~ /\d+\.example/") == [
        "=~", "name", r"\d+\.example"]


def test_regex_flags_become_inline_flags():
    assert parse_filter("name =~ /web/i") == ["=~", "name", "(?i)web"]
    assert parse_filter("name =~ /a.b/si") == ["=~", "name", "(?is)a.b"]


def test_regex_may_contain_spaces_and_keywords():
    assert parse_filter("name =~ /a and b/") == ["=~", "name", "a and b"]


# ---------------------------------------------------------------------------
# Parsing: errors

def _parse_error(text: str) -> str:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    return str(info.value)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_text_is_rejected(text):
    assert "empty filter" in _parse_error(text)


def test_missing_value_reports_column():
    assert _parse_error("name ==") == (
        "cannot parse filter 'name ==': expected a value, found end of text"
        " at column 8")


@pytest.mark.parametrize("text, column", [
    ("a and", 6), ("a or", 5), ("not", 4), ("a and or b", 7)])
def test_dangling_boolean_operator_is_rejected(text, column):
    message = _parse_error(text)
    assert "expected a filter condition" in message
    assert message.endswith(f"at column {column}")


def test_leading_comparison_operator_is_rejected():
    message = _parse_error("== 3")
    assert "expected a filter condition, found '=='" in message


def test_unclosed_parenthesis_is_rejected():
    assert _parse_error("(a or b") == (
        "cannot parse filter '(a or b': expected ')', found end of text"
        " at column 8")


def test_extra_closing_parenthesis_is_rejected():
    message = _parse_error("(a) or b)")
    assert "unexpected ')' (unbalanced parentheses) at column 9" in message


def test_trailing_garbage_is_rejected():
    assert "unexpected '1' at column 8" in _parse_error("x == 1 1")


def test_value_without_in_is_rejected():
    assert "expected 'in'" in _parse_error('"x"')


def test_keyword_is_not_a_field_name():
    assert "expected a field name" in _parse_error('"x" in and')


def test_uppercase_field_is_rejected():
    assert "found 'Name'" in _parse_error('Name == "x"')


def test_unterminated_string_is_rejected():
    assert "cannot parse filter" in _parse_error('name == "abc')


def test_invalid_regex_is_rejected_with_reason():
    message = _parse_error("name =~ /(/")
    assert "invalid regular expression '('" in message
    assert message.endswith("at column 9")


def test_unterminated_regex_is_rejected():
    assert "expected a /regular expression/" in _parse_error("name =~ /abc")


def test_unknown_regex_flag_is_rejected():
    assert "unknown regex flag(s) 'q'" in _parse_error("name =~ /a/q")


def test_deep_nesting_raises_filter_error():
    with pytest.raises(FilterError):
        parse_filter("(" * 5000 + "a" + ")" * 5000)


def test_filter_error_is_a_value_error():
    assert issubclass(FilterError, ValueError)


# ---------------------------------------------------------------------------
# names_filter

def test_names_filter_builds_or_of_equalities():
    assert names_filter("name", ["a", "b"]) == [
        "|", ["=", "name", "a"], ["=", "name", "b"]]


def test_names_filter_with_single_name_still_uses_or():
    assert names_filter("name", ["a"]) == ["|", ["=", "name", "a"]]


def test_names_filter_without_names_is_none():
    assert names_filter("name", []) is None


def test_names_filter_selects_matching_rows():
    accept = compile_filter(names_filter("name", ["n1", "n3"]))
    assert [r["name"] for r in ROWS if accept(r)] == ["n1", "n3"]


# ---------------------------------------------------------------------------
# compile_filter: validation

@pytest.mark.parametrize("qfilter, fragment", [
    (["~~", "name", "x"], "unknown filter operator '~~'"),
    ([["=", "a", 1]], "unknown filter operator"),
    ([], "non-empty list"),
    ("name", "non-empty list"),
    (["=", "name"], "takes 2 operand(s), got 1"),
    (["<", "a", 1, 2], "takes 2 operand(s), got 3"),
    (["!"], "takes 1 operand(s), got 0"),
    (["?", "a", "b"], "takes 1 operand(s), got 2"),
    (["&"], "needs at least one operand"),
    (["|"], "needs at least one operand"),
    (["=", 3, "x"], "invalid field name 3"),
    (["!", "name"], "non-empty list"),
    (["=~", "name", "("], "invalid regular expression '('"),
    (["=~", "name", 5], "must be a string"),
])
def test_invalid_list_filters_are_rejected(qfilter, fragment):
    with pytest.raises(FilterError, match=re.escape(fragment)):
        compile_filter(qfilter)


def test_unknown_field_is_rejected_when_fields_are_known():
    with pytest.raises(FilterError, match="unknown field 'colour'"):
        compile_filter(["&", ["?", "name"], ["=", "colour", "red"]],
                       known_fields={"name", "mem"})


def test_known_fields_are_accepted():
    accept = compile_filter(parse_filter("mem > 100 and name"),
                            known_fields={"name", "mem"})
    assert accept({"name": "n1", "mem": 200})


def test_any_field_is_accepted_without_known_fields():
    assert not compile_filter(["?", "whatever"])({})


# ---------------------------------------------------------------------------
# compile_filter: evaluation

ROWS = [
    {"name": "n1", "mem": 1024, "tags": ["web", "prod"], "master": True,
     "ip": "10.0.0.1", "ratio": 0.5},
    {"name": "n2", "mem": 512, "tags": [], "master": False,
     "ip": "10.0.0.2", "ratio": None},
    {"name": "n3", "mem": None, "tags": ["db"], "master": False,
     "ip": "192.168.1.3", "ratio": 1.5},
]


def _names(text: str) -> list[str]:
    accept = compile_filter(parse_filter(text))
    return [row["name"] for row in ROWS if accept(row)]


def test_none_filter_accepts_every_row():
    accept = compile_filter(None)
    assert all(accept(row) for row in ROWS)


@pytest.mark.parametrize("text, names", [
    ('name == "n2"', ["n2"]),
    ('name != "n2"', ["n1", "n3"]),
    ("mem > 512", ["n1"]),
    ("mem >= 512", ["n1", "n2"]),
    ("mem < 1024", ["n2"]),
    ("mem <= 1024", ["n1", "n2"]),
    ("ratio > 0.7", ["n3"]),
    ("master", ["n1"]),
    ("not master", ["n2", "n3"]),
    ("tags", ["n1", "n3"]),
    ("master == true", ["n1"]),
    ("master == false", ["n2", "n3"]),
    ('"web" in tags', ["n1"]),
    ('"web" not in tags', ["n2", "n3"]),
    ("ip =~ /^10\\./", ["n1", "n2"]),
    ("ip !~ /^10\\./", ["n3"]),
    ("name =~ /N[13]/i", ["n1", "n3"]),
    ("mem =~ /^5/", ["n2"]),
])
def test_predicate_selects_expected_rows(text, names):
    assert _names(text) == names


def test_and_or_not_combine_predicates():
    assert _names("master or mem < 1000 and not tags") == ["n1", "n2"]
    assert _names("(master or mem < 1000) and tags") == ["n1"]


def test_string_value_is_converted_for_numeric_field():
    assert _names('mem == "512"') == ["n2"]
    assert _names('mem > "600"') == ["n1"]
    assert _names('mem == "512.0"') == ["n2"]


def test_unconvertible_string_is_never_equal_to_number():
    assert _names('mem == "lots"') == []
    assert _names('mem != "lots"') == ["n1", "n2", "n3"]


def test_strings_compare_in_lexical_order():
    assert _names('ip < "10.0.0.2"') == ["n1"]


def test_ordering_with_missing_value_is_false_not_error():
    accept = compile_filter(["<", "mem", 5000])
    assert accept({"mem": None}) is False
    assert accept({}) is False
    assert compile_filter([">", "mem", None])({"mem": 3}) is False


def test_ordering_between_incomparable_types_is_false():
    assert compile_filter(["<", "tags", 3])({"tags": ["a"]}) is False
    assert compile_filter(["<", "mem", "big"])({"mem": 3}) is False


def test_equality_with_none():
    assert compile_filter(["=", "mem", None])({"mem": None})
    assert not compile_filter(["=", "mem", 0])({"mem": None})


def test_membership_on_non_list_is_false():
    assert compile_filter(["=[]", "name", "n"])({"name": "n1"}) is False


def test_membership_converts_numeric_strings():
    assert compile_filter(["=[]", "sizes", "10"])({"sizes": [5, 10]})


def test_regex_on_missing_value_is_false():
    assert compile_filter(["=~", "ip", "."])({"ip": None}) is False


def test_tuple_filters_are_accepted():
    assert compile_filter(("&", ("?", "a"), ("=", "b", 1)))({"a": 1, "b": 1})


# ---------------------------------------------------------------------------
# Property-based tests

if given is not None:
    _KEYWORDS = {"and", "or", "not", "in", "true", "false"}
    _fields = st.from_regex(r"\A[a-z_][a-z0-9_./]{0,8}\Z").filter(
        lambda name: name not in _KEYWORDS)
    _values = st.one_of(
        st.text(max_size=10),
        st.integers(min_value=-10**12, max_value=10**12),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans())
    _regexes = st.sampled_from(["a", "^x$", "a/b", r"\d+", "(?i)web", "a b"])
    _leaves = st.one_of(
        st.tuples(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
                  _fields, _values).map(list),
        st.tuples(st.just("=~"), _fields, _regexes).map(list),
        st.tuples(st.just("=[]"), _fields, _values).map(list),
        st.tuples(st.just("?"), _fields).map(list))
    _filters = st.recursive(
        _leaves,
        lambda inner: st.one_of(
            inner.map(lambda f: ["!", f]),
            st.lists(inner, min_size=2, max_size=4).map(lambda fs: ["&", *fs]),
            st.lists(inner, min_size=2, max_size=4).map(lambda fs: ["|", *fs])),
        max_leaves=12)

    def _render_value(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(value)

    _SYMBOLS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">",
                ">=": ">="}

    def _render(node: list) -> str:
        op = node[0]
        if op in ("&", "|"):
            joiner = " and " if op == "&" else " or "
            return joiner.join(f"({_render(part)})" for part in node[1:])
        if op == "!":
            return f"not ({_render(node[1])})"
        if op == "?":
            return node[1]
        if op == "=~":
            return f"{node[1]} =~ /{node[2].replace('/', chr(92) + '/')}/"
        if op == "=[]":
            return f"{_render_value(node[2])} in {node[1]}"
        return f"{node[1]} {_SYMBOLS[op]} {_render_value(node[2])}"

    def _same(a: object, b: object) -> bool:
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(_same, a, b))
        return type(a) is type(b) and a == b

    @settings(max_examples=200, deadline=None)
    @given(_filters)
    def test_rendered_filters_parse_back_to_the_same_list(qfilter):
        assert _same(parse_filter(_render(qfilter)), qfilter)

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(
        st.text(max_size=40),
        st.text(alphabet='ab =!<>~()"\'\\/ in and or not 1.5-', max_size=40)))
    def test_arbitrary_text_only_ever_raises_filter_error(text):
        try:
            result = parse_filter(text)
        except FilterError:
            return
        assert isinstance(result, list)
        compile_filter(result)({"a": 1, "b": "x"})

    _row_values = st.one_of(st.none(), st.integers(), st.text(max_size=5),
                            st.lists(st.integers(), max_size=3), st.booleans())

    @settings(max_examples=200, deadline=None)
    @given(_filters, st.dictionaries(_fields, _row_values, max_size=5))
    def test_compiled_predicates_never_raise_on_any_row(qfilter, row):
        assert compile_filter(qfilter)(row) in (True, False)


# ---------------------------------------------------------------------------
# Ganeti's other spellings, and the arguments of list commands

@pytest.mark.parametrize("text, expected", [
    ('name = "node1"', ["=", "name", "node1"]),
    ("name =~ m#^a/b#i", ["=~", "name", "(?i)^a/b"]),
    ("name =~ |a\\|b|", ["=~", "name", "a|b"]),
    ("name =~ ^web^", ["=~", "name", "web"]),
    ('name =* "web*"', ["=~", "name", r"^web[^.]*(\..*)?$"]),
    ('name !* "w?b"', ["!", ["=~", "name", r"^w[^.]b(\..*)?$"]]),
    ("disk.size/0 >= 1024 and nic.mac/1", ["&", [">=", "disk.size/0", 1024], ["?", "nic.mac/1"]]),
])
def test_ganetis_legacy_equal_regex_delimiters_and_globs_parse(text, expected):
    assert parse_filter(text) == expected


@pytest.mark.parametrize("name, matches", [
    ("web1", True), ("web1.example.com", True), ("web", True), ("xweb1", False), ("web1x.a", True),
    ("we.b1", False),
])
def test_a_glob_matches_dns_names_from_their_leftmost_part(name, matches):
    assert (re.search(glob_pattern("web*"), name) is not None) is matches


@pytest.mark.parametrize("args, force, expected", [
    ([], False, None),
    (["web1", "db1"], False, ["|", ["=", "name", "web1"], ["=", "name", "db1"]]),
    (["web*"], False, ["|", ["=~", "name", r"^web[^.]*(\..*)?$"]]),
    (['status == "running"'], False, ["=", "status", "running"]),
    (["admin_up"], True, ["?", "admin_up"]),
    (["admin_up", "and", "oper_state"], True, ["&", ["?", "admin_up"], ["?", "oper_state"]]),
])
def test_list_arguments_are_names_globs_or_a_filter_as_in_ganeti(args, force, expected):
    assert make_filter(args, force) == expected
