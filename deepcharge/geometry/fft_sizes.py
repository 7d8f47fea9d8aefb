"""Grid sizes fast Fourier transforms handle fast."""


def fft_friendly_size(minimum: int) -> int:
    """The smallest n ≥ ``minimum`` whose only prime factors are 2, 3 and 5 (grid sizes FFTs handle fast, the kind
    plane-wave codes choose: VASP, Quantum ESPRESSO)."""
    size = max(1, minimum)
    while True:
        rest = size
        for factor in (2, 3, 5):
            while rest % factor == 0:
                rest //= factor
        if rest == 1:
            return size
        size += 1
