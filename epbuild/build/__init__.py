"""`invoke build`, one way through: the pre-bake steps over the cells' source trees, one bake solve and its progress,
the report, the reproducible export, the stage cache and the rebuild plan; the build lock, the blob store and `invoke
gc` that keep build/ in bounds."""
