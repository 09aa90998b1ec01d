"""genet.qmp, the one QMP client, against a small fake QEMU monitor on a unix socket; and how the
kvm hypervisor and the mirror disk template report its failures."""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from genet import qmp
from genet.errors import HypervisorError, StorageError

GREETING = {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": []}}


class FakeQemu:
    """Answers QMP on ``sock``: ``fail`` with a GenericError, any other command with its name and
    arguments; ``sessions`` lists the commands of each session."""

    def __init__(self, sock: Path, monkeypatch):
        sock.parent.mkdir(parents=True, exist_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with monkeypatch.context() as m:        # relative: deep paths pass the sun_path limit
            m.chdir(sock.parent)
            self.server.bind(sock.name)
        self.server.listen(4)
        self.sessions: list[list[str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                try:
                    self._session(conn)
                except OSError:         # the client hung up
                    pass

    @staticmethod
    def _requests(conn: socket.socket):
        """The JSON objects the client sends (QMP has no line ends: a stream of objects)."""
        decoder, buffer = json.JSONDecoder(), ""
        while data := conn.recv(4096):
            buffer += data.decode()
            while buffer.strip():
                try:
                    request, end = decoder.raw_decode(buffer.lstrip())
                except ValueError:
                    break
                buffer = buffer.lstrip()[end:]
                yield request

    def _session(self, conn: socket.socket) -> None:
        commands: list[str] = []
        self.sessions.append(commands)
        self._send(conn, GREETING)
        for request in self._requests(conn):
            name = request["execute"]
            commands.append(name)
            if name == "fail":
                reply = {"error": {"class": "GenericError", "desc": "refused"}}
            elif name == "qmp_capabilities":
                reply = {"return": {}}
            else:
                reply = {"return": {"cmd": name, "args": request.get("arguments", {})}}
            if "id" in request:
                reply["id"] = request["id"]
            self._send(conn, reply)

    @staticmethod
    def _send(conn: socket.socket, message: dict) -> None:
        conn.sendall(json.dumps(message).encode() + b"\r\n")

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def qemu(tmp_path, monkeypatch):
    fake = FakeQemu(tmp_path / "qmp.sock", monkeypatch)
    yield fake
    fake.close()


def test_commands_run_in_order_in_one_session(qemu, tmp_path):
    """When several commands are given, they run in one session, in order, each with its result."""
    mon = qmp.Monitor(tmp_path / "qmp.sock", "instance web1")
    results = mon.execute_many([("query-status", None), ("stop", {"x": 1})])
    assert results == [{"cmd": "query-status", "args": {}}, {"cmd": "stop", "args": {"x": 1}}]
    assert qemu.sessions == [["qmp_capabilities", "query-status", "stop"]]


def test_a_refused_command_raises_its_qmp_error_class_and_stops_the_rest(qemu, tmp_path):
    """When QEMU refuses a command, the error names the monitor, the command and QMP's class,
    and the commands after it are not sent."""
    mon = qmp.Monitor(tmp_path / "qmp.sock", "instance web1")
    with pytest.raises(qmp.QmpCommandError, match="instance web1: QMP fail failed") as err:
        mon.execute_many([("fail", None), ("cont", None)])
    assert err.value.error_class == "GenericError"
    assert qemu.sessions == [["qmp_capabilities", "fail"]]


def test_a_missing_socket_is_a_qmp_error_naming_it(tmp_path):
    """When no QEMU listens, the error names the monitor and its socket."""
    with pytest.raises(qmp.QmpError, match=r"mirror d1: QMP monitor .*nothing\.sock \(connect\)"):
        qmp.Monitor(tmp_path / "nothing.sock", "mirror d1", timeout=1).execute("query-status")


def test_sockets_deeper_than_the_unix_path_limit_are_reached(tmp_path, monkeypatch):
    """When the socket's path is longer than sun_path allows, the session still opens."""
    sock = tmp_path / ("d" * 60) / ("e" * 60) / "qmp.sock"
    fake = FakeQemu(sock, monkeypatch)
    try:
        assert len(str(sock)) > 108
        assert qmp.Monitor(sock, "deep").execute("query-status") == {"cmd": "query-status", "args": {}}
    finally:
        fake.close()


def test_the_kvm_monitor_fails_as_the_hypervisor_does(qemu, tmp_path):
    """When QEMU refuses a command of a kvm instance, the error is a MonitorError (a
    HypervisorError) with QMP's class; an absent monitor is a HypervisorError too."""
    from genet.hypervisor.kvm.monitor import Monitor, MonitorError
    with pytest.raises(MonitorError, match="instance inst1: QMP fail failed") as err:
        Monitor(tmp_path / "qmp.sock", "inst1").execute("fail")
    assert err.value.error_class == "GenericError" and isinstance(err.value, HypervisorError)
    with pytest.raises(HypervisorError, match="instance inst1: QMP monitor"):
        Monitor(tmp_path / "gone.sock", "inst1", timeout=1).execute("query-status")


def test_the_mirror_template_reports_qmp_failures_as_storage_errors(tmp_path, monkeypatch):
    """When the mirror daemon's QEMU refuses a command, the template raises a StorageError that
    says what it was doing; its results come back as they are otherwise."""
    from genet.storage.mirror import MirrorStorage
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    disk = {"uuid": "d1"}
    template = MirrorStorage()
    fake = FakeQemu(template.run_dir(disk) / "qmp.sock", monkeypatch)
    try:
        assert template._qmp(disk, [("query-block-jobs", None)], "sync") == [{"cmd": "query-block-jobs", "args": {}}]
        with pytest.raises(StorageError, match="sync of d1: mirror d1: QMP fail failed"):
            template._qmp(disk, [("fail", None)], "sync of d1")
    finally:
        fake.close()


def test_storage_reaches_qemu_without_the_hypervisor_backend():
    """The mirror template talks QMP through genet.qmp, not through the kvm hypervisor."""
    source = (Path(__file__).resolve().parents[2] / "storage/mirror.py").read_text()
    assert "genet.hypervisor" not in source
