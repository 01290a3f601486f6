#!/usr/bin/env python3
"""Single-instruction oracle for twinbed's differential test (platforms/engine/tests/differential.rs).

Runs ARMv7-M Thumb instructions one at a time in Unicorn (QEMU-based, GPL: used only from test
tooling through this script, never linked into twinbed) and prints the state after each.

Protocol (JSON lines on stdin, one JSON line out per case, in order):
  {"init": {"code_base": A, "code": "<hex>", "data_base": B, "data": "<hex>"}}   first line
  {"id": N, "pc": PC, "insn": "<hex bytes>", "r": [r0..r12, sp, lr], "apsr": NZCVQ in bits 31..27}
answers
  {"id": N, "exc": null | "UC_ERR_...", "addr": null | unmapped address accessed,
   "r": [r0..r15], "xpsr": XPSR,
   "mem": [[address, byte], ...]}   bytes of both pages that differ from their initial contents

Every case starts from the initial page contents (with the instruction written at PC), the given
registers, IT = 0, T = 1, Thread mode, PRIMASK/BASEPRI/FAULTMASK/CONTROL = 0, no open exclusive
access. "exc" names the UcError Unicorn raised: UC_ERR_INSN_INVALID for UNDEFINED encodings,
UC_ERR_EXCEPTION for other exceptions (SVC, BKPT, NOCP, UsageFaults, faulting fetches),
UC_ERR_READ_UNMAPPED / UC_ERR_WRITE_UNMAPPED for accesses outside the two pages.

Unicorn notes:
- UC_MODE_MCLASS makes Unicorn 2.1 ignore the CPU model and build a Cortex-M33 (DSP, FPU,
  ARMv8-M). Plain UC_MODE_THUMB with the Cortex-M3 model gives an M-profile core without them.
- Writing code with mem_write does not drop translated blocks: the cache is removed by hand.
"""

import ctypes
import json
import sys

try:
    from unicorn import Uc, UcError, UC_ARCH_ARM, UC_MODE_THUMB, UC_HOOK_MEM_UNMAPPED
    from unicorn import arm_const as A
except ImportError:
    sys.stderr.write(
        "oracle-unicorn: the Python package `unicorn` is missing; `cargo xtask test` installs it "
        "(or: python3 -m pip install unicorn==2.1.4)\n"
    )
    sys.exit(3)

REGS = [getattr(A, f"UC_ARM_REG_R{i}") for i in range(13)] + [A.UC_ARM_REG_SP, A.UC_ARM_REG_LR]
OUT_REGS = REGS + [A.UC_ARM_REG_PC, A.UC_ARM_REG_XPSR]
SYSREGS = [A.UC_ARM_REG_PRIMASK, A.UC_ARM_REG_BASEPRI, A.UC_ARM_REG_FAULTMASK, A.UC_ARM_REG_CONTROL]
ERRNAMES = {v: k for k, v in vars(__import__("unicorn").unicorn_const).items() if k.startswith("UC_ERR_")}
# A page only Unicorn has, holding CLREX, to close an exclusive access a case opened.
HELPER = 0x0010_0000
CLREX = bytes.fromhex("bff32f8f")


def page_size(n):
    return (n + 0xFFF) & ~0xFFF


class RegBlock:
    """Reads or writes a fixed list of 32-bit registers in one call. Unicorn's Python batch API
    re-derives every register's type on each call (a third of the run time); this keeps the
    ctypes arrays and calls the binding's batch primitives directly, falling back to the
    public API if a future binding lacks them."""

    def __init__(self, uc, ids):
        n = len(ids)
        self.uc, self.ids, self.n = uc, list(ids), n
        self.c_ids = (ctypes.c_int * n)(*ids)
        self.vals = (ctypes.c_uint32 * n)()
        base = ctypes.addressof(self.vals)
        self.ptrs = (ctypes.c_void_p * n)(*(base + 4 * i for i in range(n)))
        self.fast = hasattr(uc, "_do_reg_read_batch") and hasattr(uc, "_do_reg_write_batch")

    def read(self):
        if not self.fast:
            return list(self.uc.reg_read_batch(self.ids))
        if self.uc._do_reg_read_batch(self.c_ids, self.ptrs, ctypes.c_int(self.n)) != 0:
            raise RuntimeError("uc_reg_read_batch failed")
        return list(self.vals)

    def write(self, values):
        if not self.fast:
            self.uc.reg_write_batch(list(zip(self.ids, values)))
            return
        self.vals[:] = values
        if self.uc._do_reg_write_batch(self.c_ids, self.ptrs, ctypes.c_int(self.n)) != 0:
            raise RuntimeError("uc_reg_write_batch failed")


def changed(base, now, before):
    """[[address, byte]] where `now` differs from `before` (few bytes: one XOR of the pages)."""
    x = int.from_bytes(now, "little") ^ int.from_bytes(before, "little")
    out = []
    while x:
        i = ((x & -x).bit_length() - 1) // 8
        out.append([base + i, now[i]])
        x &= ~(0xFF << (8 * i))
    return out


def main():
    first = json.loads(sys.stdin.readline())["init"]
    code_base, data_base = first["code_base"], first["data_base"]
    code0 = bytes.fromhex(first["code"])
    data0 = bytes.fromhex(first["data"])

    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
    uc.ctl_set_cpu_model(A.UC_CPU_ARM_CORTEX_M3)
    uc.mem_map(code_base, page_size(len(code0)))
    uc.mem_map(data_base, page_size(len(data0)))
    uc.mem_map(HELPER, 0x1000)
    uc.mem_write(HELPER, CLREX)
    uc.mem_write(code_base, code0)
    uc.mem_write(data_base, data0)
    fault_addr = []

    def unmapped(_uc, _access, address, _size, _value, _data):
        fault_addr.append(address)
        return False  # still a fault

    uc.hook_add(UC_HOOK_MEM_UNMAPPED, unmapped)
    writer = RegBlock(uc, REGS + SYSREGS + [A.UC_ARM_REG_XPSR])
    reader = RegBlock(uc, OUT_REGS)
    code_dirty = data_dirty = False
    last = None
    out = sys.stdout.buffer
    pending = []

    for line in sys.stdin:
        case = json.loads(line)
        pc = case["pc"]
        insn = bytes.fromhex(case["insn"])
        code = bytearray(code0)
        off = pc - code_base
        code[off : off + len(insn)] = insn
        code = bytes(code)
        if code_dirty:
            uc.mem_write(code_base, code0)
        elif last is not None:
            uc.mem_write(last[0], code0[last[0] - code_base : last[1] - code_base])
        uc.mem_write(pc, insn)
        last = (pc, pc + len(insn))
        uc.ctl_remove_cache(pc, pc + len(insn))
        if data_dirty:
            uc.mem_write(data_base, data0)

        writer.write(case["r"] + [0] * len(SYSREGS) + [(case["apsr"] & 0xF800_0000) | (1 << 24)])

        exc = None
        fault_addr.clear()
        try:
            # `until` right after the instruction ends the translation block there; without it
            # Unicorn translates up to 512 following instructions for every case.
            uc.emu_start(pc | 1, pc + len(insn), count=1)
        except UcError as e:
            exc = ERRNAMES.get(e.errno, f"UC_ERR_{e.errno}")

        *regs, xpsr = reader.read()
        code_now = bytes(uc.mem_read(code_base, len(code0)))
        data_now = bytes(uc.mem_read(data_base, len(data0)))
        # Report code bytes against the page with the instruction in it, like the Rust side.
        mem = changed(code_base, code_now, code) if code_now != code else []
        code_dirty = bool(mem)
        data_dirty = data_now != data0
        if data_dirty:
            mem += changed(data_base, data_now, data0)

        hw1 = int.from_bytes(insn[:2], "little")
        if hw1 & 0xFF60 == 0xE840 or hw1 & 0xFFF0 in (0xE8C0, 0xE8D0):
            # LDREX/STREX families: leave no exclusive access open for the next case.
            try:
                uc.emu_start(HELPER | 1, HELPER + 4, count=1)
            except UcError:
                pass

        pending.append(json.dumps(
                {"id": case["id"], "exc": exc, "addr": fault_addr[0] if fault_addr else None,
                 "r": regs, "xpsr": xpsr, "mem": mem}
            ))
        if len(pending) >= 64:
            out.write(("\n".join(pending) + "\n").encode())
            pending.clear()
    out.write("".join(p + "\n" for p in pending).encode())
    out.flush()


if __name__ == "__main__":
    main()
