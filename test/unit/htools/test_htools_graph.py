"""The conflict graph and its colourings (genet.htools.graph), on graphs small enough to check
by hand and on random ones; that they match Ganeti's is test_hroller_cli.py's job."""
from __future__ import annotations

import random

import pytest

from genet.htools import graph


def test_instance_edges_keep_both_directions_and_repeats():
    """When two instances share a primary and a secondary, the edge counts twice, as in Ganeti."""
    assert graph.instance_edges([(0, 1), (0, 1)]) == [(0, 1), (1, 0), (0, 1), (1, 0)]


def test_shared_secondary_edges_join_the_primaries_loops_included():
    assert graph.shared_secondary_edges([[], [2, 0]]) == [(2, 2), (2, 0), (0, 2), (0, 0)]


def test_reboot_edges_add_each_shared_secondary_edge_once_unless_already_there():
    edges = graph.reboot_edges([(0, 1), (2, 1)], [[], [2, 0], [0, 2]])
    assert edges == [(0, 1), (1, 0), (2, 1), (1, 2), (2, 2), (2, 0), (0, 2), (0, 0)]


def test_graph_spans_every_index_between_the_wanted_nodes_and_prints_as_haskell():
    """When node 1 is not wanted it is still a vertex, without edges; edges to it are dropped."""
    g = graph.Graph.build([0, 2, 3], [(0, 2), (2, 0), (0, 1), (2, 3), (3, 2), (0, 0)])
    assert str(g) == "array (0,3) [(0,[0,2]),(1,[]),(2,[3,0]),(3,[2])]"
    assert graph.Graph.build([], [(0, 1)]) is None


def proper(g: graph.Graph, colours: dict[int, int]) -> bool:
    return all(colours[v] != colours[u] for v in g.vertices() for u in g.adj[v] if u != v)


@pytest.mark.parametrize("seed", range(20))
def test_every_colouring_is_proper_and_colours_every_vertex(seed):
    rnd = random.Random(seed)
    n = rnd.randint(1, 40)
    pairs = [(rnd.randrange(n), rnd.randrange(n)) for _ in range(rnd.randint(0, 3 * n))]
    g = graph.Graph.build(list(range(n)), graph.instance_edges([(a, b) for a, b in pairs if a != b]))
    for name, algorithm in graph.ALGORITHMS:
        colours = algorithm(g)
        assert sorted(colours) == list(range(n)), name
        assert proper(g, colours), name


def test_colourings_break_ties_towards_the_highest_vertex():
    """On a path 0-1-2 every algorithm starts with the middle vertex; on edgeless vertices all
    share colour 0."""
    path = graph.Graph.build([0, 1, 2], graph.instance_edges([(0, 1), (1, 2)]))
    for _, algorithm in graph.ALGORITHMS:
        assert algorithm(path) == {1: 0, 0: 1, 2: 1}
    single = graph.Graph.build([0, 1], [])
    assert [graph.colour_groups(a(single)) for _, a in graph.ALGORITHMS] == [[[0, 1]]] * 3


def test_stats_go_from_fewest_colours_to_most():
    results = [("LF", [[0], [1], [2]]), ("Dsatur", [[0, 1], [2]]), ("Dcolor", [[0, 2], [1]])]
    assert graph.stats(results) == "Dcolor: 2 (2,1) TIE Dsatur: 2 (2,1) LOOSE LF: 3 (1,1,1)"
    assert graph.smallest(results) == [[0, 1], [2]]
