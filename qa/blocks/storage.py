"""Block ``storage``: the nodes' storage units, volumes and DRBD minors, read both ways, and the
two changes that undo themselves.

For each storage type an exercised template keeps its disks in, the master's units from **gnt-node
list-storage** must be those ``GET /2/nodes/MASTER/storage`` answers (a job, as in Ganeti), and
**gnt-storage diagnose** and **info** must name the same providers. With LVM (``storage[lvm]``):
**gnt-node volumes** and **list-drbd** may name only instances that exist, a physical volume is
made unallocatable and allocatable again, and a volume group none of whose physical volumes is
missing is "repaired" (vgreduce --removemissing finds nothing to drop).
"""
from __future__ import annotations

from qa.context import Context
from qa.report import CheckFailed, Skip

BLOCK = "storage"
# Ganeti's storage type of each disk template (its MAP_DISK_TEMPLATE_STORAGE_TYPE, for those that
# report their units); genet's mirror keeps its images in the file storage directory
STORAGE_TYPE = {"plain": "lvm-vg", "drbd": "lvm-vg", "file": "file", "mirror": "file", "sharedfile": "sharedfile"}
FIELDS = ["name", "size", "free", "allocatable"]


def units(ctx: Context, node: str, storage_type: str) -> list[list[str]]:
    """**gnt-node list-storage** rows of FIELDS (sizes in MiB, allocatable Y/N)."""
    out = ctx.gnt("gnt-node", "list-storage", "--no-headers", "--separator=|", "-t", storage_type,
                  "-o", ",".join(FIELDS), node).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def rapi_units(ctx: Context, node: str, storage_type: str) -> list[list[str]]:
    """The same rows from the RAPI's job."""
    job = ctx.rapi.run_job("GET", f"/2/nodes/{node}/storage", storage_type=storage_type,
                           output_fields=",".join(FIELDS))
    return [[str(name), str(size), str(free), "Y" if allocatable else "N"]
            for name, size, free, allocatable in job["opresult"][0]]


def run(ctx: Context) -> None:
    master = ctx.facts.master
    templates = ctx.runnable_templates()
    types = sorted({STORAGE_TYPE[t] for t in templates if t in STORAGE_TYPE})
    for storage_type in types:
        with ctx.check(BLOCK, f"list-storage[{storage_type}] agrees with the RAPI"):
            for _ in range(3):      # the free space of a busy file system may move between the two reads
                listed, answered = units(ctx, master, storage_type), rapi_units(ctx, master, storage_type)
                if listed == answered:
                    break
            else:
                raise CheckFailed(f"gnt-node list-storage shows {listed}, the RAPI {answered}")

    with ctx.check(BLOCK, "gnt-storage diagnose and info name the same providers"):
        diagnosed = [line.split(": ", 1)[1] for line in ctx.gnt("gnt-storage", "diagnose").stdout.splitlines()
                     if line.startswith("Provider: ")]
        described = [line[:-1] for line in ctx.gnt("gnt-storage", "info").stdout.splitlines()
                     if line.endswith(":") and not line.startswith(" ")]
        if sorted(diagnosed) != sorted(described):
            raise CheckFailed(f"gnt-storage diagnose names {diagnosed}, info {described}")

    if "lvm-vg" not in types:
        with ctx.check(f"{BLOCK}[lvm]", "all"):
            raise Skip("no template exercised keeps its disks in LVM (plain, drbd)")
        return
    lvm_checks(ctx, f"{BLOCK}[lvm]", master, "drbd" in templates)


def lvm_checks(ctx: Context, block: str, master: str, drbd: bool) -> None:
    known = set(ctx.facts.instances) | set(ctx.created)
    with ctx.check(block, "volumes name only existing instances"):
        out = ctx.gnt("gnt-node", "volumes", "--no-headers", "--separator=|", "-o", "node,vg,name,instance").stdout
        strangers = [row for row in (line.split("|") for line in out.splitlines() if line.strip())
                     if row[3] != "-" and row[3] not in known]
        if strangers:
            raise CheckFailed(f"gnt-node volumes names instances that do not exist: {strangers}")

    with ctx.check(block, "list-drbd names only existing instances"):
        if not drbd:
            raise Skip("template drbd is not exercised")
        out = ctx.gnt("gnt-node", "list-drbd", "--no-headers", "--separator=|", master).stdout
        strangers = [row for row in (line.split("|") for line in out.splitlines() if line.strip())
                     if row[2] not in known]
        if strangers:
            raise CheckFailed(f"gnt-node list-drbd names instances that do not exist: {strangers}")

    with ctx.check(block, "modify-storage --allocatable no, then yes"):
        pvs = [row for row in units(ctx, master, "lvm-pv") if row[3] == "Y" and row[0] != "[unknown]"]
        if not pvs:
            raise Skip(f"{master} has no allocatable physical volume")
        pv = pvs[-1][0]
        try:
            ctx.gnt("gnt-node", "modify-storage", "--allocatable", "no", master, "lvm-pv", pv)
            if [r for r in rapi_units(ctx, master, "lvm-pv") if r[0] == pv][0][3] != "N":
                raise CheckFailed(f"{pv} on {master} is still allocatable")
        finally:
            ctx.gnt("gnt-node", "modify-storage", "--allocatable", "yes", master, "lvm-pv", pv)
        if [r for r in units(ctx, master, "lvm-pv") if r[0] == pv][0][3] != "Y":
            raise CheckFailed(f"{pv} on {master} is not allocatable again")

    with ctx.check(block, "repair-storage of a consistent volume group changes nothing"):
        if any(row[0] == "[unknown]" for row in units(ctx, master, "lvm-pv")):
            raise Skip(f"a physical volume of {master} is missing: repairing would drop volumes")
        groups = units(ctx, master, "lvm-vg")
        if not groups:
            raise Skip(f"{master} has no volume group")
        before = ctx.gnt("gnt-node", "volumes", "--no-headers", "--separator=|", master).stdout
        ctx.gnt("gnt-node", "repair-storage", master, "lvm-vg", groups[0][0])
        after = ctx.gnt("gnt-node", "volumes", "--no-headers", "--separator=|", master).stdout
        if after != before:
            raise CheckFailed(f"repair-storage of {groups[0][0]} changed the volumes of {master}")
