"""Build the Unity package (unity_bridge/) as a tarball for Unity's *Add package from tarball*.

    python tools/pack_unity_bridge.py [--out DIR]      # writes DIR/com.serdaemon.bridge-X.Y.Z.tgz (default DIR: dist/)

The layout is the one ``npm pack`` writes and Unity's Package Manager reads: every file under
``package/``, gzip-compressed, extension ``.tgz``. Shipped: what Unity imports from a package
(``package.json``, ``Runtime/``, ``Editor/``, ``Tests/``, ``Samples~/``, the README, CHANGELOG and
LICENSE with their ``.meta`` files). Left out: ``Tests~/`` (the stand-ins and probes the daemon's
test suite compiles under Mono; Unity ignores ``~`` folders anyway) and editor or OS litter.

The archive is reproducible: entries sorted, owner 0, modes 0644/0755, every timestamp set to
SOURCE_DATE_EPOCH (default: 2000-01-01), so the same tree gives the same bytes and the same SHA-256,
which the script prints for release notes. Needs only the standard library.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from pathlib import Path

__all__ = ["build_tarball", "shipped_files", "main"]

BRIDGE = Path(__file__).resolve().parent.parent / "unity_bridge"
LEFT_OUT_DIRS = {"Tests~"}
LEFT_OUT_NAMES = {".DS_Store", "Thumbs.db", "__pycache__"}
DEFAULT_EPOCH = 946684800  # 2000-01-01T00:00:00Z


def shipped_files(root: Path = BRIDGE) -> list[Path]:
    """The files that go into the tarball, relative to ``root``, sorted."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in LEFT_OUT_DIRS or any(p in LEFT_OUT_NAMES for p in rel.parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            out.append(rel)
    return out


def build_tarball(out_dir: Path, root: Path = BRIDGE, epoch: int = DEFAULT_EPOCH) -> Path:
    """Write ``<name>-<version>.tgz`` into ``out_dir`` and return its path."""
    pkg = json.loads((root / "package.json").read_text(encoding="utf-8"))
    target = out_dir / f"{pkg['name']}-{pkg['version']}.tgz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for rel in shipped_files(root):
            data = (root / rel).read_bytes()
            info = tarfile.TarInfo("package/" + rel.as_posix())
            info.size = len(data)
            info.mtime = epoch
            info.mode = 0o755 if os.access(root / rel, os.X_OK) and rel.suffix in {".sh", ".py"} else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=epoch, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("dist"), help="folder for the .tgz (created if missing; default: dist)")
    args = parser.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"pack_unity_bridge: --out {args.out} exists and is not a folder", file=sys.stderr)
        return 2
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", DEFAULT_EPOCH))
    try:
        path = build_tarball(args.out, epoch=epoch)
    except OSError as exc:
        print(f"pack_unity_bridge: cannot write into {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"{path}  sha256 {digest}  ({len(shipped_files())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
