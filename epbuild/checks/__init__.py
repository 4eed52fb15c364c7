"""The in-image checks: what a cell's image must carry, running testinfra against it, the host's GPU and NIC detection
and reading the device code a file carries."""
