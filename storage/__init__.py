"""Disk templates behind one interface (base.DiskTemplate): diskless, file, sharedfile."""
