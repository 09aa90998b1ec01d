"""genet's initial cluster score is Ganeti's, to the 8 decimals hbal prints.

Both hbal programs read the same file with a minimum score so high (-e) that they stop right
after printing the initial score; the clusters cover the score's inputs: offline nodes, dynamic
utilisation ignored, exclusion and location tags, stopped and offline instances, plain, DRBD
and externally mirrored (sharedfile, rbd) disks, nodes and instances whose numbers disagree.
"""
from __future__ import annotations

import pytest

import htools_testlib as lib

STOP_AFTER_SCORE = ("-e", "1e12")


def scores(real_hbal, genet_hbal, path, *options):
    real = lib.run(real_hbal, "-t", path, *STOP_AFTER_SCORE, *options)
    genet = lib.run(genet_hbal, "-t", path, *STOP_AFTER_SCORE, *options)
    assert real.returncode == 0, real.stderr
    assert genet.returncode == 0, genet.stderr
    assert genet.stderr == real.stderr      # the same inconsistency warnings, if any
    return lib.initial_score(real.stdout), lib.initial_score(genet.stdout)


CASES = [(5, 1, ()), (8, 2, ("-O", "node003")), (12, 3, ("--ignore-dynu",)),
         (16, 4, ("--exclusion-tags", "backup")), (20, 5, ()), (25, 6, ("-O", "node001", "-O", "node010")),
         (30, 7, ("--ignore-dynu", "--exclusion-tags", "service,backup"))]


@pytest.mark.parametrize("nodes,seed,options", CASES)
def test_initial_score_of_a_generated_cluster(real_hbal, genet_hbal, tmp_path, nodes, seed, options):
    path = tmp_path / "cluster.data"
    path.write_text(lib.cluster_text(nodes, seed))
    real, genet = scores(real_hbal, genet_hbal, path, *options)
    assert genet == real


@pytest.mark.parametrize("nodes,seed,options", CASES[::2])
def test_initial_score_with_offline_stopped_and_shared_storage_instances(real_hbal, genet_hbal, tmp_path,
                                                                           nodes, seed, options):
    path = tmp_path / "cluster.data"
    path.write_text(lib.mixed_cluster(nodes, seed))
    real, genet = scores(real_hbal, genet_hbal, path, *options)
    assert genet == real


def test_initial_score_without_location_or_exclusion_tags(real_hbal, genet_hbal, tmp_path):
    secs = lib.sections(lib.cluster_text(10, 8))
    secs[3] = []
    path = tmp_path / "cluster.data"
    path.write_text(lib.join(secs))
    real, genet = scores(real_hbal, genet_hbal, path)
    assert genet == real


@pytest.mark.parametrize("options", [(), ("-O", "n2"), ("--ignore-dynu",), ("--exclusion-tags", "svc"),
                                     ("-O", "n3", "--ignore-dynu")])
def test_initial_score_of_a_hand_written_cluster(real_hbal, genet_hbal, tmp_path, options):
    path = tmp_path / "hand.data"
    path.write_text(lib.HAND_CLUSTER)
    real, genet = scores(real_hbal, genet_hbal, path, *options)
    assert genet == real


def test_initial_score_from_the_balancer_object_is_the_printed_one(real_hbal, tmp_path):
    """genet.htools.balance.Balancer's score, built as hbal builds it, is what hbal prints."""
    from genet.htools import hbal, loader
    from genet.htools.balance import Balancer, Options
    path = tmp_path / "cluster.data"
    path.write_text(lib.cluster_text(10, 9))
    args = hbal.build_parser().parse_args(["-t", str(path)])
    data = loader.read_cluster(args)
    st = loader.build_state(data, args)
    members = st.groups_nodes()[0][1]
    total = Balancer(st, members, Options()).score.total()
    real = lib.run(real_hbal, "-t", path, *STOP_AFTER_SCORE)
    assert f"{total:.8f}" == lib.initial_score(real.stdout)


def test_non_mirrored_instance_whose_secondary_is_its_primary(real_hbal, genet_hbal, tmp_path):
    """Ganeti accepts a plain or sharedfile instance that names its primary as secondary too.

    Its loader then counts the instance on that node a second time (it warns that the node is
    missing memory) and scores the cluster accordingly; genet ignores the secondary.
    """
    secs = lib.sections(lib.cluster_text(5, 1))
    f = next(line.split("|") for line in secs[2] if line.split("|")[8] == "plain")
    old = "|".join(f)
    f[7] = f[6]
    secs[2] = ["|".join(f) if line == old else line for line in secs[2]]
    path = tmp_path / "cluster.data"
    path.write_text(lib.join(secs))
    real = lib.run(real_hbal, "-t", path, *STOP_AFTER_SCORE)
    genet = lib.run(genet_hbal, "-t", path, *STOP_AFTER_SCORE)
    assert (genet.returncode, genet.stderr) == (real.returncode, real.stderr)
    assert lib.initial_score(genet.stdout) == lib.initial_score(real.stdout)
