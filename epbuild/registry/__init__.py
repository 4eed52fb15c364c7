"""One client per registry: reads, manifest copies and pushes through the Registry HTTP API, and the credentials a
publish or pull runs with."""
