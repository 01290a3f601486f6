//! Hooks for the testbed: functions that do nothing on hardware but give an emulator a
//! deterministic place to stop the guest (by symbol name) and act on the virtual world.

/// Called by an application right before it reads its sensors, with the guest's uptime and the
/// sample index as its arguments (r0/r1 under the AAPCS: `twinbed_contract::hook`, which the
/// emulator reads too). twinbed sets a breakpoint on this symbol to update sensor models (e.g.
/// the TMP105 temperature over QMP on QEMU) at exactly this point of virtual time, which makes
/// sensor profiles reproducible byte for byte. On hardware it is a no-op call.
#[no_mangle]
#[inline(never)]
pub extern "C" fn twinbed_sample_hook(uptime_ms: u32, index: u32) {
    // Keep the arguments (and the call) alive through optimisation.
    core::hint::black_box((uptime_ms, index));
}

// `#[no_mangle]` exports the function under its own name, and an attribute cannot take a
// constant: check at compile time that the name is the one the contract tells the emulator.
const _: () = assert!(
    same_str(twinbed_contract::hook::SYMBOL, "twinbed_sample_hook"),
    "the sample hook's name must be twinbed_contract::hook::SYMBOL"
);

/// `a == b`, at compile time (for build-time knobs read with `option_env!`).
pub const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
