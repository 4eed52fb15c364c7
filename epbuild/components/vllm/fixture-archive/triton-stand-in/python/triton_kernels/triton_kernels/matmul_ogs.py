"""Stand-in module: a second file, so the checks compare a package rather than one file."""


def matmul_ogs(x, w):
    return [[sum(a * b for a, b in zip(row, col)) for col in zip(*w)] for row in x]
