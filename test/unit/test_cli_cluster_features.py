"""gnt-cluster init and modify's options of Ganeti's optional features as a user types them: the
opcode they build, and init's refusals of what genet cannot honour (before anything is made)."""
from __future__ import annotations

import pytest

from luxi_recorder import recorder  # noqa: F401 (a fixture)
from test_cli_common_options import run


def test_modify_passes_ganetis_forms_of_the_feature_options(recorder):
    code = run(["gnt-cluster", "modify", "--compression-tools", "gzip,lzop", "--user-shutdown", "yes",
                "--instance-communication-network", "comm", "--install-image", "/srv/i.img",
                "--zeroing-image", "http://x/z.img", "--enabled-data-collectors", "lv=false,drbd=true",
                "--data-collector-interval", "cpu-avg-load=1.5"])[0]
    [[op]] = recorder.jobs
    assert code == 0
    assert (op["compression_tools"], op["enabled_user_shutdown"], op["instance_communication_network"]) == \
        (["gzip", "lzop"], True, "comm")
    assert (op["install_image"], op["zeroing_image"]) == ("/srv/i.img", "http://x/z.img")
    assert op["enabled_data_collectors"] == {"lv": False, "drbd": True}
    assert op["data_collector_interval"] == {"cpu-avg-load": 1_500_000}


def test_an_empty_list_of_compression_tools_is_ganetis_default_and_an_empty_network_disables(recorder):
    run(["gnt-cluster", "modify", "--compression-tools=", "--instance-communication-network="])
    [[op]] = recorder.jobs
    assert op["compression_tools"] == ["gzip", "gzip-fast", "gzip-slow"]
    assert op["instance_communication_network"] == ""


@pytest.mark.parametrize("args, message", [
    (["--gluster-storage-dir", "/srv/gluster"], "genet has no gluster disk template"),
    (["--ssh-key-type", "ecdsa"], "genet makes no SSH keys"),
    (["--ssh-key-bits", "4096"], "genet makes no SSH keys"),
])
def test_init_refuses_what_genet_cannot_honour(args, message, tmp_path, monkeypatch):
    """When init is given an option genet cannot act on, it fails naming why, and no cluster is made."""
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    monkeypatch.setenv("GENET_HOSTNAME", "localhost")
    code, _, err = run(["gnt-cluster", "init", *args, "c1"])
    assert code == 1 and message in err
    assert not (tmp_path / "var/lib/genet/config.data").exists()



def test_modify_auto_balance_usage_takes_yes_or_no_alone(recorder):
    """genet's --auto-balance-usage sets that one setting of automatic balancing."""
    assert run(["gnt-cluster", "modify", "--auto-balance-usage", "yes"])[0] == 0
    [[op]] = recorder.jobs
    assert op["auto_balance_usage"] is True and op["auto_balance"] is None
