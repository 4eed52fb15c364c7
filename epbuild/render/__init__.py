"""The matrix rendered: each cell's Dockerfile, the bake file, the cell record (manifest), the content key and the
published tags, and the README's stage diagram."""
