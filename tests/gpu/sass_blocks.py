#!/usr/bin/env python3
"""What a kernel's score passes cost, read off its SASS (no GPU needed; cuobjdump from tests/gpu/sass_tools.sh).

    python3 tests/gpu/sass_blocks.py K.sass [--min-mufu N] [--function NAME]
    python3 tests/gpu/sass_blocks.py A.sass B.sass            # each in turn (a base and a candidate)

K.sass: `cuobjdump -sass [-fun NAME] X.fatbin`. The kernel is split into basic blocks (a branch target or the
instruction after a branch starts one); every block with at least N (default 16) MUFU ops is printed with its
instruction count and opcode histogram: those are the softmax's score passes (one MUFU.EX2 a score), so a block's
instruction count over its MUFU count is what a score costs in issue slots there. Also printed: the kernel's local
memory traffic (LDL / STL, i.e. spills) with the HGMMA count of the 300 instructions around each, which tells a
spill in the key-tile loop (HGMMA nearby) from one in the set-up or the epilogue.
"""
import collections
import re
import sys

_INS = re.compile(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_BRANCH = re.compile(r"\b(BRA|BRX|JMP|CALL|BSSY|BSYNC|WARPSYNC)\b")


def functions(path):
    """{name: [(address, instruction text)]} of every function in a cuobjdump -sass listing."""
    out, cur = {}, None
    with open(path) as f:
        for line in f:
            if "Function : " in line:
                cur = out.setdefault(line.split("Function : ", 1)[1].strip(), [])
                continue
            m = _INS.match(line)
            if m and cur is not None:
                cur.append((int(m.group(1), 16), m.group(2)))
    return out


def opcode(text):
    return re.sub(r"^@!?U?P[T0-9]+\s+", "", text).split()[0]


def blocks(ins):
    targets = set()
    for _, s in ins:
        if _BRANCH.search(s):
            targets.update(int(t, 16) for t in re.findall(r"0x([0-9a-f]+)", s))
    out, cur = [], []
    for a, s in ins:
        if a in targets and cur:
            out.append(cur)
            cur = []
        cur.append((a, s))
        if re.search(r"\b(BRA|EXIT|RET)\b", s):
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def score_blocks(ins, min_mufu):
    for b in blocks(ins):
        h = collections.Counter(opcode(s) for _, s in b)
        mufu = sum(v for k, v in h.items() if k.startswith("MUFU"))
        if mufu >= min_mufu:
            yield b[0][0], len(b), mufu, h


def spills(ins):
    for i, (a, s) in enumerate(ins):
        if re.match(r"(LDL|STL)", opcode(s)):
            near = sum(1 for _, x in ins[max(0, i - 150):i + 150] if opcode(x).startswith("HGMMA"))
            yield a, s, near


def report(path, fn, min_mufu):
    fns = functions(path)
    if not fns:
        sys.exit("sass_blocks: no function in %s (is it cuobjdump -sass output?)" % path)
    name = fn or next(iter(fns))
    if name not in fns:
        sys.exit("sass_blocks: no function %s in %s; it has: %s" % (name, path, ", ".join(sorted(fns))))
    ins = fns[name]
    print("%s: %s, %d instructions" % (path, name, len(ins)))
    for a, n, mufu, h in score_blocks(ins, min_mufu):
        per = " (%.2f a MUFU)" % (n / mufu) if mufu else ""
        print("  block 0x%x: %d instructions, %d MUFU%s" % (a, n, mufu, per))
        print("    " + ", ".join("%s %d" % kv for kv in h.most_common(12)))
    sp = list(spills(ins))
    in_loop = sum(1 for _, _, near in sp if near)
    print("  local memory: %d LDL / STL, %d of them near an HGMMA" % (len(sp), in_loop))
    for a, s, near in sp:
        print("    0x%x %-40s HGMMA within 150: %d" % (a, s, near))


def main(argv):
    min_mufu, fn, paths = 16, None, []
    it = iter(argv)
    for a in it:
        if a == "--min-mufu":
            min_mufu = int(next(it))
        elif a == "--function":
            fn = next(it)
        else:
            paths.append(a)
    if not paths:
        sys.exit(__doc__)
    for p in paths:
        try:
            report(p, fn, min_mufu)
        except OSError as e:
            sys.exit("sass_blocks: %s" % e)


if __name__ == "__main__":
    main(sys.argv[1:])
