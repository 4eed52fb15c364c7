"""Small tools every layer uses: running commands replayably, atomic writes, timeouts, errors, where epbuild's own files
and the build/ folder's paths are."""
