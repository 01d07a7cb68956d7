"""Synthetic human-in-scene benchmark: procedural scenes (:mod:`.scenes`), scanner-like clouds (:mod:`.scan`),
scene SDF grids (:mod:`.sdf`), the ray-casting renderer (:mod:`.render`) and the generator's people,
poses and cameras. Import the submodules directly."""
