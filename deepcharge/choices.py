"""Names the input file may choose from, defined once and free of torch (so validating an input and
``doc-train-input`` stay fast), as DeePMD-kit's ``deepmd.common`` holds them for its argcheck."""

ACTIVATION_FUNCTIONS = {"tanh": "Tanh", "gelu": "GELU", "silu": "SiLU", "relu": "ReLU", "softplus": "Softplus",
                        "sigmoid": "Sigmoid"}
"""Activation names of the input file → the ``torch.nn`` module class that implements each."""

PRECISIONS = ("float32", "float64")
"""Floating point precisions of a model; each is the name of a torch dtype."""
