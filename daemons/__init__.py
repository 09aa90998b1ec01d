"""genet's daemons and node commands as thin entry points (genet.daemons): argument parsing and
start-up wiring only; what they run lives in genet proper (genet.masterd, genet.noded,
genet.rapi.server, genet.watcher, genet.bootstrap). setup.py installs one console script each.
"""
