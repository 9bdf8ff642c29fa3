"""mnistnet: a small numpy network for MNIST, and the notebooks that teach its backprop.

Conventions (used everywhere in the package and the notebooks)
---------------------------------------------------------------
* Layer sizes are listed input first: ``Network([784, 30, 10])``.
* Weights are stored **(out, in)** and biases **(out,)**, the orientation of
  the book and of PyTorch's ``nn.Linear``: ``W1`` is (30, 784), ``W2`` is (10, 30).
* One sample is a 1-D vector ``x (784,)``::

      z = W @ x + b                     # (out,)
      nabla_w = np.outer(delta, x)      # (out, in)
      nabla_b = delta                   # (out,)

* A batch stacks samples as **rows**, ``X (B, 784)``::

      Z = X @ W.T + b                   # (B, out)
      nabla_w = Delta.T @ X / B         # (out, in): the mean of the per-sample outer products
      nabla_b = Delta.mean(axis=0)      # (out,)

* Labels are integer arrays ``y (B,)`` (a single label for a single sample);
  ``t`` is the one-hot target, ``(10,)`` or ``(B, 10)``.
* The quadratic cost of one sample is ``C = ½‖a − t‖²``; a batch cost is the
  **mean** over the batch, and every gradient is the gradient of that mean.
* Gradients are checked in float64; training may use float32 for speed.
* Randomness comes only from explicit ``seed=`` / ``np.random.Generator``
  arguments; nothing in the package seeds numpy's global state.

Names follow the math: ``z`` (weighted input), ``a`` (activation), ``delta``
(∂C/∂z), ``nabla_w`` / ``nabla_b`` (∂C/∂W, ∂C/∂b). Layers are numbered from 1
as in the notebooks (``W1``, ``b1``, …), but Python lists count from 0:
``net.weights[0]`` is ``W1``.
"""

from .data import load_data, load_mnist
from .network import Network
from .saving import load_network, save_network

__all__ = ["Network", "load_mnist", "load_data", "save_network", "load_network"]
__version__ = "0.1.0"
