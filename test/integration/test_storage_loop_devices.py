"""DRBD's file backing on real loop devices (root: losetup)."""
import os
import subprocess

from genet.storage.drbd.backing import FileBacking


def test_file_backing_hands_drbd_loop_devices(tmp_path):
    """With loop=True (real DRBD needs block devices) a volume is attached to one loop device,
    found again rather than attached twice, resized with its file and detached on release."""
    backing = FileBacking(tmp_path / "vols", loop=True)
    backing.create("d_data", 8)
    device = backing.device("d_data")
    try:
        assert device.startswith("/dev/loop")
        assert backing.device("d_data") == device
        backing.grow("d_data", 16)
        size = subprocess.run(["blockdev", "--getsize64", device], capture_output=True, text=True, check=True)
        assert int(size.stdout) == 16 * 1024 * 1024
    finally:
        backing.release("d_data")
    listed = subprocess.run(["losetup", "--noheadings", "--output", "NAME", "--associated",
                             backing.path("d_data")], capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == ""
    backing.remove("d_data")
    assert not os.path.exists(backing.path("d_data"))
