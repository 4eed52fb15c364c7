"""The CI pipelines generated from the matrix (Buildkite and GitHub Actions) and their shared-stage graph."""
