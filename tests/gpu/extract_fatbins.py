#!/usr/bin/env python3
"""Copies the product fatbins out of an unpacked GPU bundle's ops jar (for flash_check --fatbin-dir).

    python3 extract_fatbins.py BUNDLE_DIR OUT_DIR
"""
import os
import sys
import zipfile


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: extract_fatbins.py BUNDLE_DIR OUT_DIR")
    bundle, out = sys.argv[1], sys.argv[2]
    lib = os.path.join(bundle, "lib")
    classifiers = ("-tests.jar", "-sources.jar", "-javadoc.jar")
    jars = [j for j in sorted(os.listdir(lib)) if j.startswith("flashdjl-ops-") and j.endswith(".jar")
            and not j.endswith(classifiers)] if os.path.isdir(lib) else []
    if not jars:
        sys.exit(f"no flashdjl-ops-*.jar under {lib}")
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(os.path.join(lib, jars[0])) as z:
        names = [n for n in z.namelist() if n.endswith(".fatbin")]
        if not names:
            sys.exit(f"{jars[0]} holds no fatbin (built without nvcc?)")
        for n in names:
            with open(os.path.join(out, os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
            print(os.path.basename(n))


if __name__ == "__main__":
    main()
