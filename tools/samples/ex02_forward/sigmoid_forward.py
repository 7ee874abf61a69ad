# the textbook formula 1 / (1 + exp(-x)), which overflows for large negative x
# diagnosis: unstable-overflow
# ruff: noqa
out = 1 / (1 + np.exp(-x))
return out, out
