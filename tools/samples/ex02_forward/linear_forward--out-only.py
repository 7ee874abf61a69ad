# returns only out, without the cache
# diagnosis: not-a-tuple
# ruff: noqa
return x @ W + b
