"""`python -m geolocate` (also what `torchrun -m geolocate train ...` runs)."""

from geolocate.cli import main

if __name__ == "__main__":
    main()
