"""Datasets: the canonical on-disk format (:mod:`sahmr.data.format`), its validator
(:mod:`sahmr.data.format.validate`), the torch Dataset (:mod:`sahmr.data.dataset`), the synthetic benchmark
generator (:mod:`sahmr.data.synth`) and importers. Import the submodules directly."""
