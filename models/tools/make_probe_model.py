"""Writes plugin/src/inference/probe_add.onnx: a one-node model (y = x + x).

The plugin builds a session from it to prove that an execution provider (CPU or CUDA) really
creates sessions and runs on this machine before it reports that backend as usable. It is not one
of Strata's analysis models (those are trained and exported by the rest of models/).

Run from the repository root: python3 models/tools/make_probe_model.py
"""
import onnx
from onnx import TensorProto, helper

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "strata_probe", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="strata")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "plugin/src/inference/probe_add.onnx")
