"""genet's end-to-end QA suite: ordered blocks of real operations against a running cluster.

It needs nothing of genet itself, only what any genet or Ganeti cluster offers from outside: the
RAPI (HTTPS, Basic auth) and an SSH login to the master node, where the gnt-* commands run. So
the same suite checks a dev cluster in ``make check`` and a real cluster after an upgrade.

Run it as ``python -m qa --help``; man/genet-qa.rst describes the blocks and the output.
"""
