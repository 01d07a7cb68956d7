"""Body models: SMPL-family files without chumpy, the open model ``sahmr-open``, joint regressors,
contact parts and the mesh hierarchy. The entry point is :class:`sahmr.body.model.BodyModel`."""

from sahmr.body.model import BodyModel, BodyOutput, resolve_model_path

__all__ = ["BodyModel", "BodyOutput", "resolve_model_path"]
