"""The training engine: a small loop of well-named steps, and what it writes to a run directory."""
