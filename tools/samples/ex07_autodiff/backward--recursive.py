# builds the topological order with a recursive function: a deep chain raises RecursionError
# diagnosis: backward-recursive
# ruff: noqa
order, visited = [], set()

def visit(node):
    if id(node) not in visited:
        visited.add(id(node))
        for child in node._prev:
            visit(child)
        order.append(node)

visit(self)
self.grad = 1.0
for node in reversed(order):
    node._backward()
