"""High availability: who is master (an etcd lease), which dead node is fenced, which HA instance
restarts where. The logic here talks to the world only through small interfaces (a Store for
leadership, an environment for RPC, fencing and config, a Clock), so the same code runs in the
daemons and, step by step, in the scenario simulator (genet.ha.sim)."""
