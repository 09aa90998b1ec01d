"""genet: a cluster manager for KVM virtual machines in the mould of Ganeti."""

__version__ = "0.1.0"
