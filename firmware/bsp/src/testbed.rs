//! Hooks for the testbed: functions that do nothing on hardware but give an emulator a
//! deterministic place to stop the guest (by symbol name) and act on the virtual world.

/// Called by an application right before it reads its sensors, with the guest's uptime and the
/// sample index in r0/r1 (AAPCS). twinbed sets a breakpoint on this symbol to update sensor
/// models (e.g. the TMP105 temperature over QMP on QEMU) at exactly this point of virtual time,
/// which makes sensor profiles reproducible byte for byte. On hardware it is a no-op call.
#[no_mangle]
#[inline(never)]
pub extern "C" fn twinbed_sample_hook(uptime_ms: u32, index: u32) {
    // Keep the arguments (and the call) alive through optimisation.
    core::hint::black_box((uptime_ms, index));
}
