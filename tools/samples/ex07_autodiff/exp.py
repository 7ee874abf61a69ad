# forgets the chain rule: adds exp(x) without multiplying by out.grad
# diagnosis: value-chain-rule-missing
# ruff: noqa
self.grad += out.data
