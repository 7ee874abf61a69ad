# sets self.grad = 1 after running the _backward functions instead of before
# diagnosis: backward-graph-gradient-wrong
# ruff: noqa
order, visited, stack = [], set(), [(self, False)]
while stack:
    node, inputs_done = stack.pop()
    if inputs_done:
        order.append(node)
    elif id(node) not in visited:
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in node._prev if id(child) not in visited)
for node in reversed(order):
    node._backward()
self.grad = 1.0
