"""Node prerequisites of the kvm hvparams (genet.hypervisor.kvm.prereq): what cannot work on this
node is refused before QEMU starts, naming the parameter and why; what can is resolved."""
from __future__ import annotations

import os

import pytest

from genet.hypervisor.base import HypervisorError
from genet.hypervisor.kvm import KvmHypervisor, prereq
from genet.hypervisor.kvm.capabilities import Capabilities

CAPS = Capabilities(binary="/usr/bin/qemu-system-x86_64", version="7.2.0", machines={"pc": "pc-i440fx-7.2"},
                    default_machine="pc-i440fx-7.2", kvm_works=False,
                    options=frozenset({"-spice", "-runas", "-chroot"}),
                    aio_modes=frozenset({"threads", "native", "io_uring"}),
                    block_drivers=frozenset({"file", "raw", "nbd", "https"}),
                    migration_caps=frozenset({"xbzrle", "auto-converge", "postcopy-ram"}))


def resolve(caps: Capabilities = CAPS, vcpus: int = 2, **hvparams) -> prereq.Resolved:
    inst = {"name": "inst1", "beparams": {"vcpus": vcpus}, "hvparams": hvparams}
    return prereq.check(inst, KvmHypervisor.fill_parameters(hvparams), caps)


def without(caps: Capabilities, **changes) -> Capabilities:
    from dataclasses import replace
    return replace(caps, **changes)


def test_defaults_need_nothing_of_the_node():
    assert resolve() == prereq.Resolved()


def test_vhost_net_is_refused_without_dev_vhost_net(monkeypatch, tmp_path):
    monkeypatch.setattr(prereq, "VHOST_NET", tmp_path / "vhost-net")
    with pytest.raises(HypervisorError, match=r"'vhost_net'=True cannot be used on this node: .*vhost-net is missing"):
        resolve(vhost_net=True)
    resolve(vhost_net=True, nic_type="e1000")                  # does not apply there
    (tmp_path / "vhost-net").touch()
    resolve(vhost_net=True)


def test_kvm_flag_enabled_is_refused_where_kvm_cannot_work():
    with pytest.raises(HypervisorError, match=r"'kvm_flag'='enabled' cannot be used on this node: KVM is not usable"):
        resolve(kvm_flag="enabled")
    resolve(without(CAPS, kvm_works=True), kvm_flag="enabled")


def test_disk_aio_is_refused_when_this_qemu_lacks_it():
    with pytest.raises(HypervisorError, match=r"'disk_aio'='io_uring'.*QEMU 7.2.0 here supports only native,"
                                              r" threads"):
        resolve(without(CAPS, aio_modes=frozenset({"threads", "native"})), disk_aio="io_uring")


def test_spice_is_refused_on_a_qemu_built_without_it():
    with pytest.raises(HypervisorError, match=r"'spice_bind'='127.0.0.1'.*built without SPICE"):
        resolve(without(CAPS, options=frozenset({"-runas"})), spice_bind="127.0.0.1")


def test_spice_on_an_interface_takes_its_address_and_a_free_port():
    out = resolve(spice_bind="lo", spice_ip_version=4)
    assert out.spice[0] == "127.0.0.1" and out.spice[1] in prereq.SPICE_PORTS


def test_unknown_interface_is_refused():
    with pytest.raises(HypervisorError, match=r"'vnc_bind_address'='nosuch0'.*no network interface of that name"):
        resolve(vnc_bind_address="nosuch0")


def test_vnc_on_an_interface_takes_its_ipv4_address():
    assert resolve(vnc_bind_address="lo").vnc_host == "127.0.0.1"


def test_passwords_are_read_from_their_files(tmp_path):
    (tmp_path / "pw").write_text("s3cret\nignored\n")
    out = resolve(vnc_bind_address="127.0.0.1", vnc_password_file=str(tmp_path / "pw"))
    assert out.vnc_password == "s3cret"
    with pytest.raises(HypervisorError, match=r"'spice_password_file'.*cannot read it"):
        resolve(spice_bind="127.0.0.1", spice_password_file=str(tmp_path / "nope"))


@pytest.mark.parametrize("key, extra", [("cdrom_image_path", {}), ("cdrom2_image_path", {}),
                                        ("floppy_image_path", {})])
def test_missing_images_are_refused(tmp_path, key, extra):
    with pytest.raises(HypervisorError, match=rf"'{key}'.*no such file"):
        resolve(**{key: str(tmp_path / "missing.img")}, **extra)


def test_cdrom_url_needs_the_curl_driver():
    resolve(cdrom_image_path="https://example.org/a.iso")
    with pytest.raises(HypervisorError, match=r"'cdrom_image_path'.*cannot open ftp URLs"):
        resolve(cdrom_image_path="ftp://example.org/a.iso")


def test_mem_path_must_be_a_directory(tmp_path):
    resolve(mem_path=str(tmp_path))
    with pytest.raises(HypervisorError, match=r"'mem_path'.*no such directory"):
        resolve(mem_path=str(tmp_path / "hugepages"))


def test_vnc_x509_path_must_hold_the_certificates(tmp_path):
    with pytest.raises(HypervisorError, match=r"'vnc_x509_path'.*it has no ca-cert.pem"):
        resolve(vnc_bind_address="127.0.0.1", vnc_tls=True, vnc_x509_path=str(tmp_path))
    for f in prereq.VNC_X509_FILES:
        (tmp_path / f).touch()
    resolve(vnc_bind_address="127.0.0.1", vnc_tls=True, vnc_x509_path=str(tmp_path))


def test_spice_tls_needs_the_cluster_spice_certificate(tmp_path, monkeypatch):
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    with pytest.raises(HypervisorError, match=r"'spice_use_tls'.*spice.pem is missing"):
        resolve(spice_bind="127.0.0.1", spice_use_tls=True)


def test_security_model_pool_needs_a_uid_pool_and_user_an_existing_user(tmp_path, monkeypatch):
    """When the node's ssconf has no uid pool, security_model=pool is refused; with one it passes
    (the uid is taken at start); security_model=user resolves to its user."""
    from genet import config, paths
    monkeypatch.setenv("GENET_ROOT", str(tmp_path))
    with pytest.raises(HypervisorError, match=r"'security_model'='pool'.*user-id pool is empty"):
        resolve(security_model="pool")
    paths.ssconf_file("uid_pool").parent.mkdir(parents=True)
    config.write_atomic(paths.ssconf_file("uid_pool"), b"5000-5009\n")
    assert resolve(security_model="pool").run_as == ""
    with pytest.raises(HypervisorError, match=r"'security_domain'='no-such-user-x'.*no such user"):
        resolve(security_model="user", security_domain="no-such-user-x")
    assert resolve(security_model="user", security_domain="nobody").run_as == "nobody"


def test_cpu_mask_must_fit_the_vcpus_and_the_node():
    host = sorted(os.sched_getaffinity(0))
    assert resolve(cpu_mask=f"{host[0]}:all").cpu_mask == [[host[0]], None]
    with pytest.raises(HypervisorError, match=r"'cpu_mask'='0:0:0' has 3 entries but the instance has 2 vCPUs"):
        resolve(cpu_mask="0:0:0")
    with pytest.raises(HypervisorError, match=r"'cpu_mask'='4096' names CPUs this node does not have: 4096"):
        resolve(cpu_mask="4096")
    assert resolve(cpu_mask="all").cpu_mask is None


def test_migration_caps_must_be_known_to_this_qemu():
    resolve(migration_caps="xbzrle:postcopy-ram")
    with pytest.raises(HypervisorError, match=r"'migration_caps'.*no migration capability x-rdma-pin-all"):
        resolve(migration_caps="xbzrle:x-rdma-pin-all")


def test_cpu_topology_must_make_up_the_vcpus():
    resolve(vcpus=4, cpu_sockets=2, cpu_cores=2, cpu_threads=1)
    resolve(vcpus=4, cpu_cores=2)
    with pytest.raises(HypervisorError, match=r"cpu_sockets=1 x cpu_cores=2 x cpu_threads=1 do not make up the"
                                              r" instance's 4 vCPUs"):
        resolve(vcpus=4, cpu_sockets=1, cpu_cores=2, cpu_threads=1)
    with pytest.raises(HypervisorError, match=r"cpu_cores=3 do not make up the instance's 4 vCPUs"):
        resolve(vcpus=4, cpu_cores=3)
