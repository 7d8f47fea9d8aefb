"""Names the input file may choose from, defined once and free of torch (so validating an input and
``doc-train-input`` stay fast), as DeePMD-kit's ``deepmd.common`` holds them for its argcheck."""

ACTIVATION_FUNCTIONS = {"tanh": "Tanh", "gelu": "GELU", "silu": "SiLU", "relu": "ReLU", "softplus": "Softplus",
                        "sigmoid": "Sigmoid"}
"""Activation names of the input file → the ``torch.nn`` module class that implements each."""

PRECISIONS = ("float32", "float64")
"""Floating point precisions of a model; each is the name of a torch dtype."""

DENSITY_BLOCKS = ("total", "magnetization", "magnetization_x", "magnetization_y", "magnetization_z")
"""The density blocks of a VASP CHGCAR: the total density; the magnetisation of a spin-polarised file (ISPIN = 2);
its three components in a non-collinear one (LNONCOLLINEAR)."""
