"""Write a minimal VRM 1.0 avatar (.vrm, binary glTF) for trying the Unity drivers without a model of your own.

    python tools/make_minimal_vrm.py [--out dist/ser_minimal_face.vrm]

What is in it: the 15 humanoid bones VRM 1.0 requires (hips, spine, head, arms, legs) as plain nodes in
a T-pose, translation only (VRM 1.0 forbids rotation and scale in the rest pose), and one face node under
the head: a flat quad whose four corners move in six morph targets, bound to the expressions happy,
angry, sad, relaxed, surprised and blink. ``relaxed`` has ``overrideBlink: block`` like many real models,
so the drivers' deadzone and the block-override warning can be seen at work. No textures, no materials
(glTF's default material), no skin: a face to look at, not an avatar to wear.

The file is deterministic (same bytes each run) and needs only the standard library. Its structure is
checked by the daemon's test suite against the VRM 1.0 and glTF 2.0 rules it relies on; it has not
been loaded by UniVRM inside a Unity editor (see unity_bridge/README.md).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

__all__ = ["HUMAN_BONES", "EXPRESSIONS", "build_vrm", "main"]

# Required humanoid bones of VRM 1.0 and their rest positions relative to the parent bone, metres.
# (name, parent, translation)
HUMAN_BONES: tuple[tuple[str, str | None, tuple[float, float, float]], ...] = (
    ("hips", None, (0.0, 0.9, 0.0)),
    ("spine", "hips", (0.0, 0.1, 0.0)),
    ("head", "spine", (0.0, 0.5, 0.0)),
    ("leftUpperArm", "spine", (0.2, 0.35, 0.0)),
    ("leftLowerArm", "leftUpperArm", (0.25, 0.0, 0.0)),
    ("leftHand", "leftLowerArm", (0.25, 0.0, 0.0)),
    ("rightUpperArm", "spine", (-0.2, 0.35, 0.0)),
    ("rightLowerArm", "rightUpperArm", (-0.25, 0.0, 0.0)),
    ("rightHand", "rightLowerArm", (-0.25, 0.0, 0.0)),
    ("leftUpperLeg", "hips", (0.1, -0.05, 0.0)),
    ("leftLowerLeg", "leftUpperLeg", (0.0, -0.4, 0.0)),
    ("leftFoot", "leftLowerLeg", (0.0, -0.4, 0.0)),
    ("rightUpperLeg", "hips", (-0.1, -0.05, 0.0)),
    ("rightLowerLeg", "rightUpperLeg", (0.0, -0.4, 0.0)),
    ("rightFoot", "rightLowerLeg", (0.0, -0.4, 0.0)),
)

# Expression preset -> (per-corner Y offsets of the quad's 4 vertices, overrides)
EXPRESSIONS: dict[str, tuple[tuple[float, float, float, float], dict[str, str]]] = {
    "happy": ((0.0, 0.0, 0.02, 0.02), {}),
    "angry": ((0.0, 0.0, -0.02, -0.02), {}),
    "sad": ((-0.02, -0.02, 0.0, 0.0), {}),
    "relaxed": ((0.01, 0.01, 0.01, 0.01), {"overrideBlink": "block"}),
    "surprised": ((-0.02, -0.02, 0.02, 0.02), {}),
    "blink": ((0.0, 0.0, -0.01, -0.01), {}),
}

# The face quad, in the face node's space: a 20 cm square facing +Z (VRM 1.0 avatars face +Z).
QUAD = ((-0.1, -0.1, 0.0), (0.1, -0.1, 0.0), (-0.1, 0.1, 0.0), (0.1, 0.1, 0.0))
INDICES = (0, 1, 2, 2, 1, 3)
FLOAT, USHORT = 5126, 5123
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def build_vrm() -> bytes:
    """The .vrm file's bytes (GLB container: header, JSON chunk, BIN chunk)."""
    nodes: list[dict] = [{"name": "Root", "children": []}]
    index: dict[str, int] = {}
    for name, parent, t in HUMAN_BONES:
        index[name] = len(nodes)
        nodes.append({"name": name, "translation": list(t)})
        owner = nodes[0] if parent is None else nodes[index[parent]]
        owner.setdefault("children", []).append(index[name])
    face = len(nodes)
    nodes.append({"name": "Face", "translation": [0.0, 0.1, 0.1], "mesh": 0})
    nodes[index["head"]].setdefault("children", []).append(face)

    blob = bytearray()
    views: list[dict] = []
    accessors: list[dict] = []

    def add(data: bytes, target: int) -> int:
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data), "target": target})
        blob.extend(_pad(data, b"\0"))
        return len(views) - 1

    def vec3(points: tuple[tuple[float, float, float], ...]) -> int:
        data = b"".join(struct.pack("<3f", *p) for p in points)
        accessors.append({"bufferView": add(data, ARRAY_BUFFER), "componentType": FLOAT, "count": len(points), "type": "VEC3",
                          "min": [min(p[i] for p in points) for i in range(3)], "max": [max(p[i] for p in points) for i in range(3)]})
        return len(accessors) - 1

    position = vec3(QUAD)
    accessors.append({"bufferView": add(struct.pack(f"<{len(INDICES)}H", *INDICES), ELEMENT_ARRAY_BUFFER),
                      "componentType": USHORT, "count": len(INDICES), "type": "SCALAR"})
    indices = len(accessors) - 1
    targets = [{"POSITION": vec3(tuple((0.0, dy, 0.0) for dy in offsets))} for offsets, _ in EXPRESSIONS.values()]
    mesh = {"name": "Face", "primitives": [{"attributes": {"POSITION": position}, "indices": indices, "mode": 4, "targets": targets}],
            "weights": [0.0] * len(targets), "extras": {"targetNames": list(EXPRESSIONS)}}

    preset = {}
    for i, (name, (_, overrides)) in enumerate(EXPRESSIONS.items()):
        preset[name] = {"morphTargetBinds": [{"node": face, "index": i, "weight": 1.0}], "isBinary": False,
                        "overrideBlink": overrides.get("overrideBlink", "none"), "overrideLookAt": "none", "overrideMouth": "none"}
    vrm = {
        "specVersion": "1.0",
        "meta": {"name": "SER minimal face", "version": "1", "authors": ["ser-daemon"], "licenseUrl": "https://vrm.dev/licenses/1.0/",
                 "avatarPermission": "everyone", "allowExcessivelyViolentUsage": False, "allowExcessivelySexualUsage": False,
                 "commercialUsage": "personalNonProfit", "allowPoliticalOrReligiousUsage": False, "allowAntisocialOrHateUsage": False,
                 "creditNotation": "required", "allowRedistribution": True, "modification": "allowModificationRedistribution"},
        "humanoid": {"humanBones": {name: {"node": index[name]} for name, _, _ in HUMAN_BONES}},
        "expressions": {"preset": preset},
    }
    gltf = {
        "asset": {"version": "2.0", "generator": "ser-daemon tools/make_minimal_vrm.py"},
        "extensionsUsed": ["VRMC_vrm"],
        "extensions": {"VRMC_vrm": vrm},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": nodes,
        "meshes": [mesh],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    json_chunk = _pad(json.dumps(gltf, separators=(",", ":"), sort_keys=True).encode("utf-8"), b" ")
    bin_chunk = bytes(blob)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(json_chunk), b"JSON") + json_chunk
            + struct.pack("<I4s", len(bin_chunk), b"BIN\0") + bin_chunk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("dist/ser_minimal_face.vrm"), help="file to write (folders are created)")
    args = parser.parse_args(argv)
    if args.out.is_dir():
        print(f"make_minimal_vrm: --out {args.out} is a folder; give a file name ending in .vrm", file=sys.stderr)
        return 2
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(build_vrm())
    except OSError as exc:
        print(f"make_minimal_vrm: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
