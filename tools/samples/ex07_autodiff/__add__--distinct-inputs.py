# adds out.grad once to each distinct input, so a + a gets 1 instead of 2
# diagnosis: value-fan-out-wrong
# ruff: noqa
for v in {id(self): self, id(other): other}.values():
    v.grad += out.grad
