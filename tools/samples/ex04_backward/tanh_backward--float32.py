# computes the gradient in float32
# diagnosis: low-precision
# ruff: noqa
out = cache.astype(np.float32)
return dout.astype(np.float32) * (1 - out * out)
