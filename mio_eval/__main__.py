"""``python -m mio_eval`` is ``mio-eval``: the form torchrun and accelerate launch
(``torchrun --nproc-per-node N -m mio_eval task=... model=...``)."""

from mio_eval.cli import entry

if __name__ == "__main__":
    entry()
