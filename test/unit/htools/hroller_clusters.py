"""Small random clusters that exercise what hroller decides on: tight memory and disk, nodes
of two groups interleaved, offline nodes among the others, non-redundant instances of every
kind, forthcoming instances, exclusive storage with spindles, node tags, zero, one or two
master nodes.

Deterministic for a seed (random.Random), written in Ganeti's text format.
"""
from __future__ import annotations

import random

GROUPS = [("g1", "00000000-0000-4000-8000-000000000001"), ("g2", "00000000-0000-4000-8000-000000000002")]
TEMPLATES = ["drbd"] * 6 + ["plain"] * 3 + ["diskless", "file", "sharedfile", "rbd"]
STATUSES = ["running"] * 5 + ["ADMIN_down", "ADMIN_offline", "ERROR_up"]
POLICY = ("128,1,1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|"
          "diskless,file,sharedfile,plain,blockdev,drbd,rbd,ext|4.0|32.0")


def random_cluster(seed: int, sizes: tuple[int, int] = (3, 9)) -> str:
    """A cluster of between sizes[0] and sizes[1] nodes, with up to three instances a node."""
    rnd = random.Random(seed)
    n_groups = rnd.choice([1, 1, 2])
    n_nodes = rnd.randint(*sizes)
    masters = rnd.choices([0, 1, 2], weights=[1, 8, 1])[0]
    master_at = set(rnd.sample(range(n_nodes), masters))
    nodes = []
    for k in range(n_nodes):
        nodes.append(dict(name=f"node{k:02d}", group=rnd.randrange(n_groups), t_mem=rnd.choice([4096, 8192, 16384]),
                          t_dsk=rnd.choice([30000, 60000, 120000]), offline=rnd.random() < 0.12,
                          excl=rnd.random() < 0.15, spindles=rnd.randint(2, 6),
                          tags=",".join(sorted(rnd.sample(["a", "b", "c"], rnd.randint(0, 2))))))
    insts = []
    used_mem = [0] * n_nodes
    used_dsk = [0] * n_nodes
    used_sp = [0] * n_nodes
    for j in range(rnd.randint(0, 3 * n_nodes)):
        template = rnd.choice(TEMPLATES)
        pnode = rnd.randrange(n_nodes)
        same_group = [k for k in range(n_nodes) if k != pnode and
                      (nodes[k]["group"] == nodes[pnode]["group"] or rnd.random() < 0.1)]
        if template == "drbd" and not same_group:
            template = "plain"
        snode = rnd.choice(same_group) if template == "drbd" else None
        inst = dict(name=f"inst{j:02d}", mem=rnd.choice([512, 1024, 2048, 3072]),
                    dsk=rnd.choice([2048, 8192, 20480]), status=rnd.choice(STATUSES), template=template,
                    pnode=pnode, snode=snode, spindles=rnd.choice(["", "1", "2"]), forthcoming=rnd.random() < 0.08)
        insts.append(inst)
        if inst["forthcoming"]:
            continue
        if inst["status"] in ("running", "ERROR_up"):
            used_mem[pnode] += inst["mem"]
        for k in (pnode, snode):
            if k is not None and template in ("drbd", "plain"):
                used_dsk[k] += inst["dsk"]
                used_sp[k] += int(inst["spindles"] or 0)
    lines_groups = [f"{name}|{uuid}|preferred||" for name, uuid in GROUPS[:n_groups]]
    lines_nodes = []
    for k, n in enumerate(nodes):
        flag = "Y" if n["offline"] else "M" if k in master_at else "N"
        f_mem = max(n["t_mem"] - 512 - used_mem[k], 0)
        f_dsk = max(n["t_dsk"] - used_dsk[k], 0)
        free_sp = n["spindles"] - used_sp[k]
        lines_nodes.append(f"{n['name']}|{n['t_mem']}|512|{f_mem}|{n['t_dsk']}|{f_dsk}|8|{flag}|"
                           f"{GROUPS[n['group']][1]}|{n['spindles']}|{n['tags']}|{'Y' if n['excl'] else 'N'}|"
                           f"{free_sp}|1|1.0")
    lines_insts = []
    for i in insts:
        snode = nodes[i["snode"]]["name"] if i["snode"] is not None else ""
        lines_insts.append(f"{i['name']}|{i['mem']}|{i['dsk']}|1|{i['status']}|Y|{nodes[i['pnode']]['name']}|{snode}|"
                           f"{i['template']}||1|{i['spindles'] or '-'}|{'Y' if i['forthcoming'] else 'N'}")
    policies = [f"|{POLICY}"] + [f"{name}|{POLICY}" for name, _ in GROUPS[:n_groups]]
    sections = [lines_groups, lines_nodes, lines_insts, [], policies]
    return "\n".join("".join(line + "\n" for line in s) for s in sections)
