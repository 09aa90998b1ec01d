"""genet's bundled fencing agents: out-of-band programs (a node's ``oob_program``) that power a
node off, on and back, tell its power state and health (``agent`` the program side of Ganeti's
OOB protocol they share, ``ipmi`` through a BMC, ``script`` through the site's commands)."""
