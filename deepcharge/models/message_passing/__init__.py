"""DeepDFT: atoms exchange messages, probe points only receive them (invariant SchNet-like and PaiNN)."""
