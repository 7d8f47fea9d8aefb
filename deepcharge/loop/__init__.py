"""Concurrent learning (``deepcharge loop``), DP-GEN's loop for densities: train an ensemble, explore candidate
structures, select those whose ensemble σ lies between the trust levels, label them with a DFT code, repeat."""
