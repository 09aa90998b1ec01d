"""Hypervisor backends behind one interface (base.Hypervisor): kvm, fake."""
