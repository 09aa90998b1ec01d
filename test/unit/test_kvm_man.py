"""The kvm hvparams in gnt-instance(8) agree with the table in genet.hypervisor.kvm.validation:
every parameter has an entry that states its default and names every allowed value."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from genet.hypervisor.kvm.validation import PARAMS

MAN = Path(__file__).resolve().parents[2] / "man" / "gnt-instance.rst"


def entries() -> dict[str, str]:
    """Parameter name -> the text of its definition in HYPERVISOR PARAMETERS (an entry may
    define several names: ``cpu_cores``, ``cpu_threads``, ``cpu_sockets``)."""
    text = MAN.read_text()
    body = text[text.index("HYPERVISOR PARAMETERS\n"):text.index("OPERATING SYSTEMS\n")]
    found: dict[str, str] = {}
    for head, rest in re.findall(r"^((?:``\w+``(?:, )?)+)\n((?:    .*\n|\n)+)", body, re.MULTILINE):
        for name in re.findall(r"``(\w+)``", head):
            found[name] = " ".join(rest.split())
    return found

def shown(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_man_page_states_the_default_of(name):
    """When the table gives a default, the man page's entry states the same one."""
    entry = entries().get(name)
    assert entry is not None, f"{name} has no entry under HYPERVISOR PARAMETERS"
    default = PARAMS[name].default
    expected = "Default: empty" if default == "" else f"Default: ``{shown(default)}``"
    assert expected in entry, f"{name}: {expected!r} not in {entry!r}"


@pytest.mark.parametrize("name", sorted(n for n, p in PARAMS.items() if p.choices))
def test_man_page_names_every_allowed_value_of(name):
    """When the table limits a parameter to a value set, the man page names each value."""
    entry = entries()[name]
    missing = [c for c in PARAMS[name].choices if c != "" and f"``{shown(c)}``" not in entry]
    assert missing == [], f"{name}: values not named in its entry: {missing}"


def test_man_page_documents_no_kvm_parameter_the_table_lacks():
    """When an entry names a parameter, the table has it (no documented-but-gone parameter)."""
    assert sorted(set(entries()) - set(PARAMS)) == []
