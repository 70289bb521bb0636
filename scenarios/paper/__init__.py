"""The R-FAST paper's claims as scenarios (``rfast-sim reproduce``)."""
