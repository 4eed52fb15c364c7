"""The matrix and what it means: its schema and loading, the components' specs, the cells, each cell's plan and the
stage graph, all as data from which everything else is derived."""
