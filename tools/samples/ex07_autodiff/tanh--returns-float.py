# returns the number tanh(x) instead of a new Value
# diagnosis: value-not-returned
# replaces: cell
# ruff: noqa
@Value.method
def tanh(self):
    """out = tanh(self)."""
    out = Value(math.tanh(self.data), (self,), "tanh")

    def _backward():
        self.grad += (1 - out.data ** 2) * out.grad

    out._backward = _backward
    return out.data
