"""Moving pins: `invoke bump`, and following vLLM's reference Dockerfiles (`invoke pins`), with the matrix rewritten in
place, comments kept."""
