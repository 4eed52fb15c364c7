"""What a stage reads, made on the host before any build: mirrored and exported sources, versions, wheelhouses resolved
against the base, archives, crates, vendor packages, and the checks of a pin's source (preflight, NIC support,
requires)."""
