"""Inference on a user's own data: one image + a scene point cloud + a camera -> the mesh in the scene.

    from sahmr.infer import load_inputs, load_predictor
    inputs = load_inputs("img.jpg", "scan.ply", "camera.json", box_xyxy=(410, 120, 620, 700))
    predictor = load_predictor("sahmr", "runs/sahmr/final.ckpt", params="params.yaml")
    result = predictor(inputs)               # FramePrediction: verts_world, verts_cam, contact points…
    write_prediction(result, "out/")         # PLY/OBJ meshes, contact points, prediction.json

`sahmr predict` is the command-line front end (`sahmr predict --help`).
"""

from .inputs import FrameInputs, load_camera, load_image, load_inputs, load_scene_points
from .predict import FramePrediction, Predictor, load_predictor, write_prediction

__all__ = [
    "FrameInputs",
    "load_camera",
    "load_image",
    "load_inputs",
    "load_scene_points",
    "FramePrediction",
    "Predictor",
    "load_predictor",
    "write_prediction",
]
