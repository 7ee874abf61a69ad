# changes the given forward half to the derivative n * x**(n - 1)
# diagnosis: value-forward-changed
# replaces: cell
# ruff: noqa
@Value.method
def __pow__(self, n):
    """out = self ** n for a number n."""
    assert isinstance(n, (int, float)), "only a number exponent is supported"
    out = Value(n * self.data ** (n - 1), (self,), f"**{n}")

    def _backward():
        self.grad += n * self.data ** (n - 1) * out.grad

    out._backward = _backward
    return out
