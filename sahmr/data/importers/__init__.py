"""Importers of the original SA-HMR data packages (RICH, PROX quantitative) into the canonical format."""
