"""The MLP training step written by hand in pure Python: the floor for a scalar engine.

Same network (2-16-16-1, ReLU hidden layers, linear output), same loss as
micrograd's demo (mean hinge loss + 1e-4 * L2), same update (plain SGD). No graph,
no objects per operation: the forward pass keeps the activations it needs and
the backward pass is the chain rule unrolled by hand.
"""

from __future__ import annotations

from operator import mul

# layers[l][j] = (weights of neuron j of layer l, its bias); the last layer is linear
Layers = list[list[tuple[list[float], float]]]


class HandWrittenMLP:
    def __init__(self, layers: Layers) -> None:
        self.weights = [[list(w) for w, _ in layer] for layer in layers]
        self.biases = [[b for _, b in layer] for layer in layers]

    def step(
        self, points: list[tuple[float, float]], labels: list[float], lr: float, alpha: float
    ) -> float:
        """One training step (forward, backward, update); returns the loss before the update."""
        weights, biases = self.weights, self.biases
        last = len(weights) - 1
        grad_w = [[[0.0] * len(w) for w in layer] for layer in weights]
        grad_b = [[0.0] * len(layer) for layer in biases]
        n = len(points)
        data_loss = 0.0
        for point, label in zip(points, labels):
            # forward, keeping each layer's input
            inputs = [list(point)]
            x = inputs[0]
            for layer, (ws, bs) in enumerate(zip(weights, biases)):
                z = [sum(map(mul, w, x)) + b for w, b in zip(ws, bs)]
                x = z if layer == last else [v if v > 0.0 else 0.0 for v in z]
                inputs.append(x)
            score = x[0]
            margin = 1.0 - label * score
            if margin <= 0.0:
                continue  # relu(margin) is flat here: no gradient from this point
            data_loss += margin
            # backward: d(loss)/d(pre-activation) of each layer, last to first
            upstream = [-label / n]
            for layer in range(last, -1, -1):
                x = inputs[layer]
                gws, gbs, ws = grad_w[layer], grad_b[layer], weights[layer]
                below = [0.0] * len(x)
                for j, g in enumerate(upstream):
                    if g == 0.0:
                        continue
                    gbs[j] += g
                    gw, w = gws[j], ws[j]
                    for i, xi in enumerate(x):
                        gw[i] += g * xi
                        below[i] += g * w[i]
                if layer:  # through the previous layer's ReLU: its output is x
                    upstream = [g if xi > 0.0 else 0.0 for g, xi in zip(below, x)]
        loss = data_loss / n
        # L2 regularisation and the SGD update
        for ws, bs, gws, gbs in zip(weights, biases, grad_w, grad_b):
            for j, (w, gw) in enumerate(zip(ws, gws)):
                for i, wi in enumerate(w):
                    loss += alpha * wi * wi
                    w[i] = wi - lr * (gw[i] + 2.0 * alpha * wi)
                b = bs[j]
                loss += alpha * b * b
                bs[j] = b - lr * (gbs[j] + 2.0 * alpha * b)
        return loss

    def parameters(self) -> list[float]:
        return [
            p for ws, bs in zip(self.weights, self.biases) for w, b in zip(ws, bs) for p in (*w, b)
        ]
