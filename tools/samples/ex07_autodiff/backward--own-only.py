# runs only the output's own _backward, without walking the graph
# diagnosis: backward-nodes-missed
# ruff: noqa
self.grad = 1.0
self._backward()
