"""Data loading for training and evaluation (torch lives here; data commands never import it)."""
