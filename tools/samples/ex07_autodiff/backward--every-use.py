# walks every path without remembering visited nodes, so a shared node runs twice
# diagnosis: backward-visits-twice
# ruff: noqa
order, stack = [], [(self, False)]
while stack:
    node, inputs_done = stack.pop()
    if inputs_done:
        order.append(node)
    else:
        stack.append((node, True))
        stack.extend((child, False) for child in node._prev)
self.grad = 1.0
for node in reversed(order):
    node._backward()
