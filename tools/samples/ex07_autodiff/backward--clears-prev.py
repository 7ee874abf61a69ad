# marks nodes as visited by emptying their _prev, which takes the graph apart
# diagnosis: value-graph-changed
# ruff: noqa
order, stack = [], [self]
while stack:
    node = stack.pop()
    order.append(node)
    children, node._prev = node._prev, ()
    stack.extend(children)
self.grad = 1.0
for node in order:
    node._backward()
