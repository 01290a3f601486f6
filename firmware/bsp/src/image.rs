//! Where the running program lies in the flash, from cortex-m-rt's linker symbols.

/// The first address past the program's image in the flash: its code, read-only data and the
/// initial values of `.data` (cortex-m-rt's link.x: `.data` is loaded from `__sidata`, and
/// `__sdata..__edata` long). Firmware that writes the flash outside the A/B layout checks
/// against it that a plain program (linked at 0, with the whole SSRAM1 as its region) does not
/// reach there.
pub fn end() -> u32 {
    extern "C" {
        static __sidata: u32;
        static __sdata: u32;
        static __edata: u32;
    }
    // Only the addresses of these linker symbols are taken, never their contents.
    let load = core::ptr::addr_of!(__sidata) as u32;
    let len = (core::ptr::addr_of!(__edata) as u32).wrapping_sub(core::ptr::addr_of!(__sdata) as u32);
    load.wrapping_add(len)
}
