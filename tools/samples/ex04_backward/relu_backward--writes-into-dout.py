# zeroes dout where x <= 0 in place and returns it
# diagnosis: input-modified
# callers: unaffected
# ruff: noqa
dout[cache <= 0] = 0
return dout
