"""Strata's models: data recipe, training, evaluation and ONNX export (PyTorch, CPU by default)."""
