# passes dout where x < 0 instead of where x > 0
# diagnosis: relu-mask-inverted
# ruff: noqa
return dout * (cache < 0)
