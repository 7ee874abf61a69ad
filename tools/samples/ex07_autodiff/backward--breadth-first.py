# visits the graph breadth-first from the output, which is not a topological order
# diagnosis: backward-not-topological
# ruff: noqa
self.grad = 1.0
queue, seen = [self], {id(self)}
while queue:
    node = queue.pop(0)
    node._backward()
    for child in node._prev:
        if id(child) not in seen:
            seen.add(id(child))
            queue.append(child)
