# computes dx and forgets to return it
# diagnosis: returned-none
# ruff: noqa
dx = dout * (cache > 0)
