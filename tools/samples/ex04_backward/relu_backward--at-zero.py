# the mask x >= 0, which passes the gradient at x = 0 where the derivative is taken to be 0
# diagnosis: relu-mask-at-zero
# callers: unaffected
# ruff: noqa
return dout * (cache >= 0)
