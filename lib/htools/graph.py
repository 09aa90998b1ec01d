"""The node conflict graph of hroller and the colourings that split it into reboot groups.

Nodes are vertices; two nodes conflict when an instance has one as primary and the other as
secondary, or (unless the maintenance is offline) when both are primaries of instances that
share a secondary node (Ganeti's Node.mkRebootNodeGraph). A colouring gives nodes that share
no edge the same colour: each colour is a set of nodes that can reboot together.

The graph is built as Ganeti's Data.Graph.buildG builds it, edge for edge and in the same
order, since hroller -v -v -v prints it and the colourings count parallel edges and loops;
the three colourings (LF, Dsatur, Dcolor) break ties as Ganeti's do, so the groups and their
order come out the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Edge = tuple[int, int]


@dataclass
class Graph:
    """Vertices ``lo..hi`` (every index in between, even one that is not a wanted node), and
    per vertex its neighbours, latest edge first, parallel edges and loops included."""
    lo: int
    hi: int
    adj: dict[int, list[int]]

    @classmethod
    def build(cls, vertices: list[int], edges: list[Edge]) -> "Graph | None":
        """Data.Graph.buildG over the bounds of ``vertices`` with the edges between two of them;
        None when there is no vertex (Ganeti: "Cannot create node graph")."""
        if not vertices:
            return None
        lo, hi = min(vertices), max(vertices)
        wanted = set(vertices)
        adj: dict[int, list[int]] = {v: [] for v in range(lo, hi + 1)}
        for a, b in edges:
            if a in wanted and b in wanted:
                adj[a].append(b)
        for v in adj:
            adj[v].reverse()
        return cls(lo, hi, adj)

    def vertices(self) -> range:
        return range(self.lo, self.hi + 1)

    def multiplicities(self) -> dict[int, dict[int, int]]:
        """Per vertex, each neighbour once with the number of edges to it."""
        out: dict[int, dict[int, int]] = {}
        for v, neigh in self.adj.items():
            counts: dict[int, int] = {}
            for u in neigh:
                counts[u] = counts.get(u, 0) + 1
            out[v] = counts
        return out

    def __str__(self) -> str:
        """Haskell's show of the graph's array."""
        assocs = ",".join(f"({v},[{','.join(map(str, self.adj[v]))}])" for v in self.vertices())
        return f"array ({self.lo},{self.hi}) [{assocs}]"


def instance_edges(pairs: list[Edge]) -> list[Edge]:
    """Both directions of each mirrored instance's (primary, secondary) pair, in instance order
    (Ganeti's instancesToEdges)."""
    out: list[Edge] = []
    for p, s in pairs:
        out += [(p, s), (s, p)]
    return out


def shared_secondary_edges(primaries_by_secondary: list[list[int]]) -> list[Edge]:
    """For each node, every ordered pair (loops too) of the primaries of the instances it is
    secondary of (Ganeti's nodeToSharedSecondaryEdge)."""
    return [(a, b) for prims in primaries_by_secondary for a in prims for b in prims]


def reboot_edges(pairs: list[Edge], primaries_by_secondary: list[list[int]]) -> list[Edge]:
    """The instance edges, then each shared-secondary edge not already among them, once
    (Haskell's ``union``)."""
    first = instance_edges(pairs)
    seen = set(first)
    rest = []
    for e in shared_secondary_edges(primaries_by_secondary):
        if e not in seen:
            seen.add(e)
            rest.append(e)
    return first + rest


# --- colourings -------------------------------------------------------------------------------
# Each returns {vertex: colour}. A vertex takes the smallest colour none of its neighbours has.

class _Colouring:
    """The colours given so far and, per vertex, what its coloured neighbours are."""

    def __init__(self, g: Graph):
        self.g = g
        self.neighbours = g.multiplicities()
        self.colour: dict[int, int] = {}
        self.neigh_colours: dict[int, set[int]] = {v: set() for v in g.vertices()}
        self.coloured_neigh = {v: 0 for v in g.vertices()}      # with multiplicity

    def paint(self, v: int) -> None:
        taken = self.neigh_colours[v]
        c = 0
        while c in taken:
            c += 1
        self.colour[v] = c
        for u, edges in self.neighbours[v].items():
            self.neigh_colours[u].add(c)
            self.coloured_neigh[u] += edges


def colour_lf(g: Graph) -> dict[int, int]:
    """Largest degree first; among equal degrees the highest vertex first (Ganeti's colorLF:
    a right fold over the vertices sorted by ascending degree)."""
    col = _Colouring(g)
    order = sorted(g.vertices(), key=lambda v: len(g.adj[v]))
    for v in reversed(order):
        col.paint(v)
    return col.colour


def colour_dsatur(g: Graph) -> dict[int, int]:
    """Most distinct colours among the neighbours first, then largest degree (Brélaz's DSatur)."""
    return _colour_dynamic(g, saturation=True)


def colour_dcolor(g: Graph) -> dict[int, int]:
    """Most coloured neighbours (counting parallel edges) first, then largest degree."""
    return _colour_dynamic(g, saturation=False)


def _colour_dynamic(g: Graph, saturation: bool) -> dict[int, int]:
    """Colour the vertex with the largest (key, degree) next, the keys kept up to date as
    vertices are painted; ties go to the highest vertex, as Haskell's maximumBy keeps the last
    of equal elements."""
    col = _Colouring(g)
    lo = g.lo
    n = g.hi - g.lo + 1
    degree = np.array([len(g.adj[v]) for v in g.vertices()], np.int64)
    scale = int(degree.max()) + 1
    key = degree.copy()
    done = np.zeros(n, bool)
    for _ in range(n):
        k = n - 1 - int(np.argmax(key[::-1]))
        v = lo + k
        done[k] = True
        key[k] = -1
        col.paint(v)
        for u in col.neighbours[v]:
            j = u - lo
            if not done[j]:
                first = len(col.neigh_colours[u]) if saturation else col.coloured_neigh[u]
                key[j] = first * scale + degree[j]
    return col.colour


ALGORITHMS = (("LF", colour_lf), ("Dsatur", colour_dsatur), ("Dcolor", colour_dcolor))


def colour_groups(colours: dict[int, int]) -> list[list[int]]:
    """The vertices of each colour, colours and vertices in ascending order (Ganeti's
    colorVertMap)."""
    groups: dict[int, list[int]] = {}
    for v in sorted(colours):
        groups.setdefault(colours[v], []).append(v)
    return [groups[c] for c in sorted(groups)]


def colourings(g: Graph) -> list[tuple[str, list[list[int]]]]:
    return [(name, colour_groups(algo(g))) for name, algo in ALGORITHMS]


def smallest(results: list[tuple[str, list[list[int]]]]) -> list[list[int]]:
    """The first colouring with the fewest colours."""
    return min(results, key=lambda r: len(r[1]))[1]


def stats(results: list[tuple[str, list[list[int]]]]) -> str:
    """hroller -v -v's summary: the colourings from fewest colours to most, each marked TIE or
    LOOSE against the one before (Ganeti's getStats)."""
    ordered = sorted(results, key=lambda r: -len(r[1]))       # most colours first, stable
    out, last = "", 0
    for name, groups in reversed(ordered):
        text = f"{name}: {len(groups)} ({','.join(str(len(g)) for g in groups)})"
        if last == 0:
            out = text
        else:
            out += (" TIE " if last == len(groups) else " LOOSE ") + text
        last = len(groups)
    return out
