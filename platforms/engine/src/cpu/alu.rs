//! The ARM ARM's arithmetic helpers (A2.2.1, A7.4.2) shared by the instructions of
//! [`super::execute`]: the shifter with its carry out, AddWithCarry, logical results, masks.

use super::instr::{DpOp, Shift};

/// Shift_C (A7.4.2).
#[inline(always)]
pub(super) fn shift_c(v: u32, shift: Shift, amount: u32, carry: bool) -> (u32, bool) {
    if amount == 0 && shift != Shift::Rrx {
        return (v, carry);
    }
    match shift {
        Shift::Lsl => match amount {
            1..=31 => (v << amount, (v >> (32 - amount)) & 1 != 0),
            32 => (0, v & 1 != 0),
            _ => (0, false),
        },
        Shift::Lsr => match amount {
            1..=31 => (v >> amount, (v >> (amount - 1)) & 1 != 0),
            32 => (0, v >> 31 != 0),
            _ => (0, false),
        },
        Shift::Asr => {
            if amount >= 32 {
                let fill = ((v as i32) >> 31) as u32;
                (fill, fill & 1 != 0)
            } else {
                (((v as i32) >> amount) as u32, (v >> (amount - 1)) & 1 != 0)
            }
        }
        Shift::Ror => {
            let r = v.rotate_right(amount % 32);
            (r, r >> 31 != 0)
        }
        Shift::Rrx => ((u32::from(carry) << 31) | (v >> 1), v & 1 != 0),
    }
}

/// AddWithCarry (A2.2.1): result, carry out, overflow.
#[inline(always)]
pub(super) fn add_with_carry(a: u32, b: u32, carry: bool) -> (u32, bool, bool) {
    let (r1, c1) = a.overflowing_add(b);
    let (r, c2) = r1.overflowing_add(u32::from(carry));
    // Signed overflow: both operands have the same sign and the result's differs.
    let v = ((a ^ r) & (b ^ r)) >> 31 != 0;
    (r, c1 | c2, v)
}

/// The result of a logical operation of the `Logic` fast form (MOV and MVN ignore `a`).
#[inline(always)]
pub(super) fn logic(op: DpOp, a: u32, b: u32) -> u32 {
    match op {
        DpOp::And => a & b,
        DpOp::Orr => a | b,
        DpOp::Orn => a | !b,
        DpOp::Eor => a ^ b,
        DpOp::Bic => a & !b,
        DpOp::Mvn => !b,
        _ => b, // MOV (specialize makes Logic only of these seven)
    }
}

/// The low `width` bits set.
pub(super) fn mask(width: u8) -> u32 {
    if width >= 32 {
        u32::MAX
    } else {
        (1u32 << width) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_at_the_edges() {
        assert_eq!(shift_c(0x8000_0001, Shift::Lsl, 1, false), (2, true));
        assert_eq!(shift_c(1, Shift::Lsl, 32, false), (0, true));
        assert_eq!(shift_c(1, Shift::Lsl, 33, true), (0, false));
        assert_eq!(shift_c(0x8000_0000, Shift::Lsr, 32, false), (0, true));
        assert_eq!(shift_c(0x8000_0000, Shift::Asr, 40, false), (0xffff_ffff, true));
        assert_eq!(shift_c(0x8000_0001, Shift::Ror, 32, false), (0x8000_0001, true));
        assert_eq!(shift_c(3, Shift::Rrx, 1, true), (0x8000_0001, true));
        assert_eq!(shift_c(5, Shift::Ror, 0, true), (5, true));
    }

    #[test]
    fn add_with_carry_flags() {
        assert_eq!(add_with_carry(0x7fff_ffff, 1, false), (0x8000_0000, false, true));
        assert_eq!(add_with_carry(0xffff_ffff, 1, false), (0, true, false));
        // 0 - 1: carry clear (borrow), no overflow.
        assert_eq!(add_with_carry(0, !1, true), (0xffff_ffff, false, false));
        assert_eq!(add_with_carry(0x8000_0000, !1, true), (0x7fff_ffff, true, true));
    }
}
