"""A graph's operators read from its protobuf bytes (no `onnx` import on predict's path)."""

from __future__ import annotations

import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from geolocate.inference import onnx_ops
from geolocate.inference.onnx_ops import NotAnOnnxModel, op_types
from tests.robustness.hostile_round2 import graph_bytes


def test_the_field_numbers_are_onnx_protos():
    assert onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number == onnx_ops.MODEL_GRAPH
    assert onnx.ModelProto.DESCRIPTOR.fields_by_name["functions"].number == onnx_ops.MODEL_FUNCTIONS
    assert onnx.GraphProto.DESCRIPTOR.fields_by_name["node"].number == onnx_ops.GRAPH_NODE
    assert onnx.FunctionProto.DESCRIPTOR.fields_by_name["node"].number == onnx_ops.FUNCTION_NODE
    assert onnx.NodeProto.DESCRIPTOR.fields_by_name["op_type"].number == onnx_ops.NODE_OP_TYPE
    assert onnx.NodeProto.DESCRIPTOR.fields_by_name["attribute"].number == onnx_ops.NODE_ATTRIBUTE
    assert onnx.AttributeProto.DESCRIPTOR.fields_by_name["g"].number == onnx_ops.ATTRIBUTE_GRAPH
    assert onnx.AttributeProto.DESCRIPTOR.fields_by_name["graphs"].number == onnx_ops.ATTRIBUTE_GRAPHS


def test_the_operators_are_those_onnx_itself_reads_main_graph_and_subgraphs():
    assert op_types(graph_bytes()) == {"ReduceMean", "MatMul"}
    assert op_types(graph_bytes(loop=True)) == {"ReduceMean", "MatMul", "Loop", "Identity"}  # the Loop's body too


def test_a_loop_hidden_in_a_model_local_function_is_found():
    body = helper.make_node("Loop", ["", "c", "x"], ["y"], body=helper.make_graph([], "b", [], []))
    function = helper.make_function("local", "Spin", ["x"], ["y"], [body], [helper.make_opsetid("", 17)])
    graph = helper.make_graph([helper.make_node("Spin", ["image"], ["logits"], domain="local")], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, functions=[function], opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    assert "Loop" in op_types(model.SerializeToString())


@pytest.mark.parametrize("data", [b"\x0a\xff\xff\xff\xff\x0f", b"\x3a\x05abc", b"\x0b\x00", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                                  b"\x3a\x02\x0a"])
def test_broken_bytes_are_refused_never_a_traceback_or_a_hang(data):
    with pytest.raises(NotAnOnnxModel):
        op_types(data)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (lengths < 2**21 here: three varint bytes at most)."""
    length, out = len(payload), bytearray()
    while True:
        out.append((length & 0x7F) | (0x80 if length >= 0x80 else 0))
        length >>= 7
        if not length:
            break
    return bytes([number << 3 | 2]) + bytes(out) + payload


def test_a_deep_nest_of_subgraphs_is_walked_without_recursion():
    """3,000 nested If → then_branch → node levels, written by hand (protobuf's own parser stops at 100)."""
    node = _field(onnx_ops.NODE_OP_TYPE, b"Relu")
    for _ in range(3000):  # far deeper than Python's recursion limit
        graph = _field(onnx_ops.GRAPH_NODE, node)
        node = _field(onnx_ops.NODE_OP_TYPE, b"If") + _field(onnx_ops.NODE_ATTRIBUTE, _field(onnx_ops.ATTRIBUTE_GRAPH, graph))
    assert op_types(_field(onnx_ops.MODEL_GRAPH, _field(onnx_ops.GRAPH_NODE, node))) == {"If", "Relu"}


def test_the_control_flow_check_imports_no_onnx(tmp_path):
    path = tmp_path / "g.onnx"
    path.write_bytes(graph_bytes(loop=True))
    code = ("import sys, pathlib; from geolocate.inference.graph_check import control_flow_problem; "
            f"print(control_flow_problem(pathlib.Path({str(path)!r}).read_bytes())); print('onnx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0].startswith("it holds a Loop") and out[1] == "False"
