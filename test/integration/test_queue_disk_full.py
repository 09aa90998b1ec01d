"""A full disk under the job queue (a real tmpfs, so root): submissions fail clearly, nothing half-written."""
import subprocess
import time

import pytest

from genet import errors, opcodes
from queue_ctx import Ctx


@pytest.fixture
def small_fs(tmp_path):
    """A 600 KiB tmpfs: room for the queue database and little else."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk_refuses_the_job_and_keeps_earlier_ones(small_fs):
    """When the queue's disk is full, submit raises an error naming it and earlier jobs stay intact."""
    ctx = Ctx(small_fs)
    try:
        [first] = ctx.processor.submit([[opcodes.OpTestDelay(duration=0).to_dict()]])
        assert ctx.wait(first)["status"] == "success"
        filler = small_fs / "filler"
        with open(filler, "wb") as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        op = opcodes.OpTestDelay(duration=0, comment="x" * 1000).to_dict()
        with pytest.raises(errors.JobQueueFull, match="database or disk is full"):
            for _ in range(200):
                ctx.processor.submit([[op]] * 20)
        assert ctx.queue.store.get(first)[0]["status"] == "success"
        filler.unlink()
        [after] = ctx.processor.submit([[opcodes.OpTestDelay(duration=0).to_dict()]])
        assert ctx.wait(after)["status"] == "success"
    finally:
        ctx.close()


def test_jobs_running_when_the_disk_filled_finish_once_space_returns(small_fs):
    """When updates of running jobs could not be stored, they are stored after space returns."""
    ctx = Ctx(small_fs)
    try:
        filler = small_fs / "filler"
        ids = ctx.processor.submit([[opcodes.OpTestDelay(duration=0.5, no_locks=True, comment="y" * 1000).to_dict()]] * 30)
        with open(filler, "wb") as out:
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        time.sleep(1.0)     # the jobs end while nothing can be stored
        assert ctx.queue.get(ids[-1])[0]["status"] != "success"
        filler.unlink()
        for job_id in ids:
            assert ctx.wait(job_id)["status"] == "success"
            assert ctx.queue.store.get(job_id)[0]["status"] == "success"
    finally:
        ctx.close()
