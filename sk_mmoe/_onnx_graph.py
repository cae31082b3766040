"""The pieces of the exported ONNX graph: input encoding, the network with its task links,
and the label lookup, joined into one model.

The network and each task's link (raw outputs -> predictions, probabilities) go through
``torch.onnx.export``; the two ends are small ONNX graphs built here, because torch has no
string tensors: the categorical inputs arrive as strings (``LabelEncoder`` of the
``ai.onnx.ml`` domain maps them to the codes of ``_features``), and string class labels
leave as strings (``Gather`` from the classes).

Every name this module gives to a value inside the graph starts with ``sk_mmoe/``, so a
column or task name cannot collide with one.
"""

import logging
import warnings

import numpy as np
import torch
from torch import nn

from ._features import FIRST_LEVEL_CODE, MISSING_CODE, UNKNOWN_CODE

ENCODED = "sk_mmoe/encoded"
ML_DOMAIN = "ai.onnx.ml"
# LabelEncoder with keys_strings / values_int64s / default_int64.
ML_OPSET = 2


class ServingModule(nn.Module):
    """The network and each task's link: encoded features -> per-task predictions and
    probabilities (``float64``), in the order ``(prediction_0, [proba_0], prediction_1, ...)``.

    A classification task's prediction is its class index (the label lookup follows in
    ONNX); ``proba`` comes only for classification tasks.
    """

    def __init__(self, network, tasks):
        super().__init__()
        self.network = network
        self.tasks = list(tasks)
        self.eval()  # no gate dropout

    def forward(self, encoded):
        raw = self.network(encoded)  # (batch, n_tasks, max_outputs)
        outputs = []
        for t, task in enumerate(self.tasks):
            task_raw = raw[:, t, : task.n_outputs]
            outputs.append(task.predict_raw(task_raw))
            if task.is_classifier:
                outputs.append(task.proba_raw(task_raw))
        return tuple(outputs)


def export_network(serving, n_encoded, output_names):
    """``serving`` as an ONNX ``ModelProto`` with one float input ``(batch, n_encoded)``."""
    # torch.export specialises a dimension of size 0 or 1: trace with 2 rows.
    example = torch.zeros(2, n_encoded, dtype=torch.float32)
    batch = torch.export.Dim("batch")
    # The exporter logs that torchvision's operators are not registered: nothing of ours.
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # torch's own tracing code warns of its internal deprecations.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            program = torch.onnx.export(
                serving, (example,), dynamo=True, input_names=[ENCODED],
                output_names=output_names, dynamic_shapes=({0: batch},), verbose=False,
            )
    finally:
        registration.setLevel(level)
    return program.model_proto


def _opsets(network_model):
    onnx = _onnx()
    version = next(o.version for o in network_model.opset_import if o.domain in ("", "ai.onnx"))
    return [onnx.helper.make_opsetid("", version), onnx.helper.make_opsetid(ML_DOMAIN, ML_OPSET)]


def _onnx():
    import onnx

    return onnx


def encoding_graph(columns, n_features, network_model):
    """Inputs as the user sends them -> the encoded float tensor ``ENCODED``.

    ``columns`` is None for one ``double`` matrix input ``X``, or the list of
    ``InputColumn`` (per-column inputs, in ``X``'s column order; their ``index`` is the
    place in the encoded tensor).
    """
    onnx = _onnx()
    helper, TensorProto = onnx.helper, onnx.TensorProto
    nodes, inputs, initializers = [], [], []
    if columns is None:
        inputs.append(helper.make_tensor_value_info("X", TensorProto.DOUBLE, ["batch", n_features]))
        nodes.append(helper.make_node("Cast", ["X"], [ENCODED], to=TensorProto.FLOAT))
    else:
        initializers.append(helper.make_tensor("sk_mmoe/axis1", TensorProto.INT64, [1], [1]))
        pieces = {}
        for column in columns:
            prefix = f"sk_mmoe/input{column.index}"
            if column.levels is None:
                inputs.append(helper.make_tensor_value_info(column.name, TensorProto.DOUBLE, ["batch"]))
                nodes.append(helper.make_node("Cast", [column.name], [f"{prefix}/float"], to=TensorProto.FLOAT))
            else:
                inputs.append(helper.make_tensor_value_info(column.name, TensorProto.STRING, ["batch"]))
                codes = [FIRST_LEVEL_CODE + k for k in range(len(column.levels))]
                nodes.append(helper.make_node(
                    "LabelEncoder", [column.name], [f"{prefix}/code"], domain=ML_DOMAIN,
                    keys_strings=[*column.levels, column.missing],
                    values_int64s=[*codes, MISSING_CODE], default_int64=UNKNOWN_CODE,
                ))
                nodes.append(helper.make_node("Cast", [f"{prefix}/code"], [f"{prefix}/float"], to=TensorProto.FLOAT))
            nodes.append(helper.make_node("Unsqueeze", [f"{prefix}/float", "sk_mmoe/axis1"], [f"{prefix}/column"]))
            pieces[column.index] = f"{prefix}/column"
        ordered = [pieces[k] for k in sorted(pieces)]
        nodes.append(helper.make_node("Concat", ordered, [ENCODED], axis=1))
    graph = helper.make_graph(
        nodes, "sk_mmoe_encoding", inputs,
        [helper.make_tensor_value_info(ENCODED, TensorProto.FLOAT, ["batch", n_features])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=_opsets(network_model), ir_version=network_model.ir_version)


def label_array(classes):
    """The classes as an array of a type ONNX tensors have (``str`` objects, bool, int64,
    float64), or None when they have none (e.g. bytes)."""
    values = np.asarray(classes)
    if values.dtype.kind in "OU":
        strings = values.tolist()
        return np.array(strings, dtype=object) if all(isinstance(v, str) for v in strings) else None
    types = {"b": np.bool_, "i": np.int64, "u": np.int64, "f": np.float64}
    return values.astype(types[values.dtype.kind]) if values.dtype.kind in types else None


def _label_tensor(name, classes):
    onnx = _onnx()
    values = label_array(classes)
    if values.dtype == object:
        return onnx.helper.make_tensor(name, onnx.TensorProto.STRING, [len(values)],
                                       [v.encode() for v in values])
    return onnx.numpy_helper.from_array(values, name)


def labels_graph(outputs, network_model):
    """The network's per-task outputs -> the user's outputs.

    ``outputs`` lists ``(network_name, user_name, classes)``: ``classes`` is None for a
    value passed through, or the labels a class index is looked up in.
    """
    onnx = _onnx()
    helper, TensorProto = onnx.helper, onnx.TensorProto
    by_name = {o.name: o for o in network_model.graph.output}
    nodes, inputs, results, initializers = [], [], [], []
    for network_name, user_name, classes in outputs:
        inputs.append(by_name[network_name])
        if classes is None:
            nodes.append(helper.make_node("Identity", [network_name], [user_name]))
            results.append(helper.make_value_info(user_name, by_name[network_name].type))
            continue
        table = _label_tensor(f"{network_name}/classes", classes)
        initializers.append(table)
        nodes.append(helper.make_node("Cast", [network_name], [f"{network_name}/index"], to=TensorProto.INT64))
        nodes.append(helper.make_node("Gather", [table.name, f"{network_name}/index"], [user_name], axis=0))
        results.append(helper.make_tensor_value_info(user_name, table.data_type, ["batch"]))
    graph = helper.make_graph(nodes, "sk_mmoe_labels", inputs, results, initializer=initializers)
    return helper.make_model(graph, opset_imports=_opsets(network_model), ir_version=network_model.ir_version)


def join(encoding, network_model, labels):
    """One model: encoding -> network -> labels. The network's own value names get the
    prefix ``sk_mmoe/network/``, so that no column or task name meets one of them."""
    compose = _onnx().compose
    prefix = "sk_mmoe/network/"
    io_map = [(o.name, o.name) for o in network_model.graph.output]
    back = compose.merge_models(network_model, labels, io_map=io_map, prefix1=prefix)
    whole = compose.merge_models(encoding, back, io_map=[(ENCODED, prefix + ENCODED)])
    # merge_models lists a domain once per model it joined (all at one version).
    opsets = {o.domain: o.version for o in whole.opset_import}
    del whole.opset_import[:]
    whole.opset_import.extend(_onnx().helper.make_opsetid(d, v) for d, v in opsets.items())
    return whole
