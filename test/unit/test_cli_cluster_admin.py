"""gnt-cluster's administration commands refuse what they cannot do before reaching any daemon:
Ganeti's messages and exit codes, with no cluster running."""
from __future__ import annotations

import pytest

from genet import paths
from genet.cli import gnt_cluster


@pytest.mark.parametrize("argv, code, message", [
    (["renew-crypto", "--new-confd-hmac-key"], 1, "--new-confd-hmac-key is not supported: genet has no confd"),
    (["renew-crypto", "--cluster-domain-secret", "/nonexistent/cds"], 1, "cannot read /nonexistent/cds"),
    (["renew-crypto", "--new-cluster-domain-secret", "--cluster-domain-secret", "/x"], 1,
     "Only one of the --new-cluster-domain-secret and --cluster-domain-secret options can be specified"),
    (["renew-crypto", "--new-ssh-keys", "--no-ssh-key-check"], 1, "genet's nodes trust each other through the"
                                                                   " cluster certificate"),
    (["renew-crypto", "--ssh-key-bits", "4096"], 1, "--ssh-key-bits is not supported: genet keeps no SSH keys"),
    (["renew-crypto", "--new-rapi-certificate", "--rapi-certificate", "/x"], 1,
     "Only one of the --new-rapi-certificate and --rapi-certificate options can be specified."),
    (["renew-crypto", "--new-spice-certificate", "--spice-certificate", "/x"], 1,
     "When using --new-spice-certificate, the --spice-certificate and --spice-ca-certificate must not be used."),
    (["renew-crypto", "--spice-certificate", "/x"], 1,
     "Both --spice-certificate and --spice-ca-certificate must be used."),
    (["upgrade"], 1, "Precisely one of the options --to and --resume has to be given"),
    (["upgrade", "--to", "1.0.0", "--resume"], 1, "Precisely one of the options --to and --resume"),
    (["upgrade", "--to", "one"], 1, "Could not parse version string one"),
    (["command"], 1, "no command given"),
    (["modify"], 1, "no parameters to change given"),
    (["modify", "--force"], 1, "no parameters to change given"),
    (["init", "--drbd-usermode-helper", "", "c1"], 1,
     "Unsetting the drbd usermode helper while enabling DRBD is not allowed."),
    (["init", "-I", "dumb", "c1"], 1, "iallocator 'dumb' is not available"),
])
def test_refusals_exit_with_ganetis_code_and_message(argv, code, message, capsys, tmp_path):
    with paths.acting_as(tmp_path, "node1"):
        assert gnt_cluster.main(argv) == code
    assert message in " ".join(capsys.readouterr().err.split())


def test_upgrade_resume_without_an_upgrade_in_progress_does_nothing(capsys, tmp_path):
    with paths.acting_as(tmp_path, "node1"):
        assert gnt_cluster.main(["upgrade", "--resume"]) == 0
    assert capsys.readouterr() == ("", "")


def test_init_refuses_a_drbd_helper_other_than_the_loaded_modules(capsys, tmp_path, monkeypatch):
    """When this node's DRBD module runs another helper, init stops before it makes anything."""
    monkeypatch.setattr("genet.storage.drbd.backend.DrbdStorage.usermode_helper", lambda self: "/sbin/drbdadm")
    with paths.acting_as(tmp_path, "node1"):
        assert gnt_cluster.main(["init", "c1"]) == 1
        assert not paths.config_file().exists()
    assert "Error: requiring /bin/true as drbd helper but /sbin/drbdadm is the current helper" in \
        " ".join(capsys.readouterr().err.split())
