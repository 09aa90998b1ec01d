"""migration_caps and postcopy in the kvm backend's migration steps (genet.hypervisor.kvm.migration),
against a recording monitor."""
from __future__ import annotations

from genet.hypervisor.kvm import migration


class Recorder:
    """A monitor that records commands and answers query-migrate with ``migrate``."""

    def __init__(self, migrate: dict | None = None):
        self.calls: list[tuple[str, dict | None]] = []
        self.migrate = migrate or {"status": "none"}

    def execute(self, cmd: str, args: dict | None = None):
        self.calls.append((cmd, args))
        return self.migrate if cmd == "query-migrate" else {}

    def execute_many(self, calls):
        return [self.execute(c, a) for c, a in calls]


def test_source_sets_the_capabilities_before_sending():
    mon = Recorder()
    migration.start(mon, "192.0.2.9", 8102, True, 64, 30, "xbzrle:auto-converge")
    assert [c for c, _ in mon.calls] == ["migrate-set-capabilities", "migrate-set-parameters", "migrate"]
    assert mon.calls[0][1] == {"capabilities": [{"capability": "xbzrle", "state": True},
                                                {"capability": "auto-converge", "state": True}]}


def test_no_capabilities_no_command():
    mon = Recorder()
    migration.start(mon, "192.0.2.9", 8102, False, 64, 30)
    assert [c for c, _ in mon.calls] == ["stop", "migrate-set-parameters", "migrate"]
    migration.set_capabilities(mon, "", False)
    assert len(mon.calls) == 3


def test_capabilities_are_turned_off_again():
    mon = Recorder()
    migration.set_capabilities(mon, "xbzrle", False)
    assert mon.calls == [("migrate-set-capabilities", {"capabilities": [{"capability": "xbzrle", "state": False}]})]


def test_postcopy_starts_after_the_second_pass_over_the_memory():
    """When postcopy-ram is among the capabilities, an active migration switches to postcopy once
    dirty-sync-count reaches 2, as Ganeti does; before, or without the capability, it does not."""
    early = Recorder({"status": "active", "ram": {"dirty-sync-count": 1}})
    migration.status(early, "postcopy-ram")
    late = Recorder({"status": "active", "ram": {"dirty-sync-count": 2}})
    assert migration.status(late, "xbzrle:postcopy-ram")["status"] == "active"
    plain = Recorder({"status": "active", "ram": {"dirty-sync-count": 5}})
    migration.status(plain, "xbzrle")
    assert ("migrate-start-postcopy", None) in late.calls
    assert ("migrate-start-postcopy", None) not in early.calls + plain.calls
