"""The operators of an ONNX graph, read straight from its protobuf bytes, without importing `onnx`.

`import onnx` costs about a second on a small CPU (its dtype tables load an extension), more than
the rest of a cold `predict`; the control-flow check (`graph_check.control_flow_problem`) needs
only each node's `op_type`, in the main graph, in subgraphs (attributes `g` and `graphs`) and in
model-local functions. Protobuf's wire format makes that a short walk: each field is a varint key
(field number, wire type), then a varint, a fixed 4 or 8 bytes, or a length and that many bytes.
Length-delimited fields that are not messages we descend into (initializers, doc strings) are
skipped by their length, so a graph of many megabytes of weights is walked in milliseconds. The
field numbers are onnx.proto's; a test checks them against the onnx package.

The bytes are untrusted: every length is checked against what is left, groups (wire types 3/4,
never written by ONNX) are refused, and the walk is bounded (`MAX_MESSAGES`), so a hostile file
gets `NotAnOnnxModel`, never a hang or a deep recursion (the walk keeps its own stack).
"""

from __future__ import annotations

MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25  # ModelProto.graph, ModelProto.functions
GRAPH_NODE = 1  # GraphProto.node
FUNCTION_NODE = 7  # FunctionProto.node
NODE_OP_TYPE, NODE_ATTRIBUTE = 4, 5  # NodeProto.op_type, NodeProto.attribute
ATTRIBUTE_GRAPH, ATTRIBUTE_GRAPHS = 6, 11  # AttributeProto.g, AttributeProto.graphs
MAX_MESSAGES = 1_000_000  # nodes, attributes and graphs visited: far above any exported classifier

# What to do with a length-delimited field of each message kind: the kind of message it holds.
_CHILDREN = {
    "model": {MODEL_GRAPH: "graph", MODEL_FUNCTIONS: "function"},
    "graph": {GRAPH_NODE: "node"},
    "function": {FUNCTION_NODE: "node"},
    "node": {NODE_ATTRIBUTE: "attribute"},
    "attribute": {ATTRIBUTE_GRAPH: "graph", ATTRIBUTE_GRAPHS: "graph"},
}


class NotAnOnnxModel(ValueError):
    """The bytes are not a well-formed protobuf message."""


def op_types(data: bytes) -> set[str]:
    """Every `op_type` of the model in `data` (a serialised ModelProto), subgraphs and functions included."""
    found: set[str] = set()
    stack, visited = [("model", memoryview(data))], 0
    while stack:
        kind, message = stack.pop()
        visited += 1
        if visited > MAX_MESSAGES:
            raise NotAnOnnxModel(f"more than {MAX_MESSAGES:,} nested messages")
        for number, value in _length_delimited(message):
            if kind == "node" and number == NODE_OP_TYPE:
                found.add(bytes(value).decode("utf-8", errors="replace"))
            elif number in _CHILDREN[kind]:
                stack.append((_CHILDREN[kind][number], value))
    return found


def _length_delimited(message: memoryview):
    """(field number, bytes) of each length-delimited field of one message; the other fields are skipped."""
    pos, end = 0, len(message)
    while pos < end:
        key, pos = _varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(message, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(message, pos)
            if length > end - pos:
                raise NotAnOnnxModel("a field runs past the end of its message")
            yield number, message[pos:pos + length]
            pos += length
        else:
            raise NotAnOnnxModel(f"wire type {wire} (groups are never written by ONNX)")
        if pos > end:
            raise NotAnOnnxModel("a fixed-size field runs past the end of its message")


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise NotAnOnnxModel("a number runs past the end of its message")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise NotAnOnnxModel("a number longer than ten bytes")
