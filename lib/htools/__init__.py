"""genet's htools: Ganeti's cluster planning programs (hbal, hspace, hail, ...) in Python.

The cluster is read into plain records (cluster.py) from a backend (text.py: Ganeti's htools
text format), laid out as numpy arrays for speed (state.py), scored with Ganeti's cluster
metric (metrics.py) and balanced by greedy moves (balance.py). The programs' command lines,
output shapes and numbers follow Ganeti's, so scripts and habits carry over.
"""
