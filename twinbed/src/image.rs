//! Signed firmware images in MCUboot's format (`firmware/mcuimage`), for `cargo xtask sign`:
//! an ELF (its loadable segments, flattened) or a raw binary in, a signed image out, as
//! `imgtool sign --header-size H --align 4 --pad-header --version V -k KEY` writes it (H: 0x400
//! by default, the header size of the A/B layout, `twinbed_bsp::map::ab::HEADER`).

use mcuimage::{SignOptions, SigningKey, Version};
use std::path::{Path, PathBuf};

/// The repository's development key (firmware/mcuimage/keys/dev-ed25519.pem): public, for tests
/// and development only, never for devices in the field.
pub const DEV_KEY: &str = mcuimage::DEV_SECRET_KEY_PEM;

/// Why an image could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The input could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The output could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The input looks like an ELF but is not a usable one.
    #[error("{path}: not a usable 32-bit little-endian ELF: {reason}")]
    Elf {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file is not an Ed25519 private key in PEM (PKCS#8, as `imgtool keygen` writes).
    #[error("{path}: not an Ed25519 private key in PEM (make one with `imgtool keygen -t ed25519 -k key.pem`): {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The version string is not `major[.minor[.revision[+build]]]`.
    #[error("bad version `{0}`: expected major[.minor[.revision[+build]]], e.g. 1.2.3+4")]
    Version(String),
    /// The signer refused the options or the payload.
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// What to sign and how.
#[derive(Clone, Debug)]
pub struct SignRequest {
    /// An ELF (its loadable segments are flattened from the lowest address, gaps 0xff) or a
    /// raw binary (anything that does not start with the ELF magic).
    pub input: PathBuf,
    /// Where the signed image goes.
    pub output: PathBuf,
    /// Image version, e.g. `1.2.3+4`.
    pub version: String,
    /// Ed25519 private key in PEM; `None`: the development key.
    pub key: Option<PathBuf>,
    /// Slot size in bytes: the image must fit (0: no check).
    pub slot_size: u32,
    /// Header size (imgtool's `--header-size`): where the code starts in the slot.
    pub header_size: u16,
    /// Pad the image to `slot_size` and mark it confirmed in the slot's trailer (imgtool's
    /// `--pad --confirm`): a factory image that boots without a trial.
    pub confirm: bool,
}

/// The header size of the A/B layout ([`twinbed_contract::layout::HEADER`]).
pub const HEADER_SIZE: u16 = {
    let h = twinbed_contract::layout::HEADER;
    assert!(h <= u16::MAX as u32, "an MCUboot header size is a u16");
    h as u16
};

/// What was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// Payload bytes (without header and TLVs).
    pub payload_len: usize,
    /// Whole image bytes.
    pub image_len: usize,
    /// Load address of the payload (the ELF's lowest segment; 0 for a raw binary).
    pub load_addr: u32,
    /// Whether the development key signed it.
    pub dev_key: bool,
}

/// What a signed image carries in its slot's trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trailer {
    /// Nothing: the image alone (what an update channel carries, `cargo xtask sign`'s default).
    None,
    /// Padded to the slot with the trailer's magic (imgtool's `--pad`): pending, so the next
    /// boot starts its trial.
    Pending,
    /// Padded and confirmed (imgtool's `--pad --confirm`): a factory image, booted without a
    /// trial.
    Confirmed,
}

/// Signs `req.input` into `req.output`.
pub fn sign_file(req: &SignRequest) -> Result<Signed, ImageError> {
    let (payload, load_addr) = read_payload(&req.input)?;
    let (key, dev_key) = signing_key(req.key.as_deref())?;
    let trailer = if req.confirm { Trailer::Confirmed } else { Trailer::None };
    let image = sign_payload(&payload, &req.version, &key, req.slot_size, req.header_size, trailer)?;
    std::fs::write(&req.output, &image)
        .map_err(|source| ImageError::Write { path: req.output.clone(), source })?;
    Ok(Signed { payload_len: payload.len(), image_len: image.len(), load_addr, dev_key })
}

/// The payload of an ELF (flattened, see [`flatten_elf`]) or raw binary, and its load address.
pub fn read_payload(path: &Path) -> Result<(Vec<u8>, u32), ImageError> {
    let data = std::fs::read(path).map_err(|source| ImageError::Read { path: path.to_owned(), source })?;
    if data.starts_with(b"\x7fELF") {
        flatten_elf(&data).map_err(|reason| ImageError::Elf { path: path.to_owned(), reason })
    } else {
        Ok((data, 0))
    }
}

/// The key in the PEM file `path`, or the development key; and whether it is the latter.
pub fn signing_key(path: Option<&Path>) -> Result<(SigningKey, bool), ImageError> {
    let pem = match path {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|source| ImageError::Read { path: p.to_owned(), source })?
        }
        None => DEV_KEY.to_owned(),
    };
    let key = SigningKey::from_pem(&pem).map_err(|e| ImageError::Key {
        path: path.map_or_else(|| "firmware/mcuimage/keys/dev-ed25519.pem".into(), Path::to_owned),
        reason: e.to_string(),
    })?;
    Ok((key, path.is_none()))
}

/// Signs `payload` as `version` (`imgtool sign --header-size H --align 4 --pad-header`), with
/// the slot trailer `trailer` asks for (padding needs `slot_size`).
pub fn sign_payload(
    payload: &[u8],
    version: &str,
    key: &SigningKey,
    slot_size: u32,
    header_size: u16,
    trailer: Trailer,
) -> Result<Vec<u8>, ImageError> {
    let version: Version = version.parse().map_err(|_| ImageError::Version(version.to_owned()))?;
    let opts = SignOptions {
        version,
        header_size,
        pad_header: true,
        align: 4,
        slot_size,
        pad: trailer == Trailer::Pending,
        confirm: trailer == Trailer::Confirmed,
        ..SignOptions::default()
    };
    mcuimage::sign(payload, &opts, key).map_err(|e| ImageError::Sign(e.to_string()))
}

/// The loadable contents of an ELF as one binary from its lowest load address (gaps 0xff, the
/// erased value of flash), and that address.
pub fn flatten_elf(data: &[u8]) -> Result<(Vec<u8>, u32), String> {
    use object::read::elf::{ElfFile32, FileHeader, ProgramHeader, SectionHeader};
    let file = ElfFile32::<object::LittleEndian>::parse(data).map_err(|e| e.to_string())?;
    let endian = file.endian();
    // File ranges of the allocated sections: a loadable segment that holds none of them holds
    // only the ELF and program headers (the linker maps them when there is room before the
    // first section), which are not part of the program.
    let sections: Vec<(u64, u64)> = file
        .elf_section_table()
        .iter()
        .filter(|s| {
            s.sh_flags(endian) & object::elf::SHF_ALLOC != 0 && s.sh_type(endian) != object::elf::SHT_NOBITS
        })
        .map(|s| (u64::from(s.sh_offset(endian)), u64::from(s.sh_size(endian))))
        .filter(|(_, size)| *size > 0)
        .collect();
    let mut segments = Vec::new();
    for ph in file.elf_program_headers() {
        if ph.p_type(endian) != object::elf::PT_LOAD || ph.p_filesz(endian) == 0 {
            continue;
        }
        let (off, len) = (u64::from(ph.p_offset(endian)), u64::from(ph.p_filesz(endian)));
        if !sections.iter().any(|&(s, n)| s >= off && s + n <= off + len) {
            continue;
        }
        let bytes = ph.data(endian, data).map_err(|()| "a segment lies outside the file".to_owned())?;
        segments.push((ph.p_paddr(endian), bytes));
    }
    let _ = file.elf_header().e_entry(endian);
    let Some(start) = segments.iter().map(|(a, _)| *a).min() else {
        return Err("no loadable segment".into());
    };
    let end = segments.iter().map(|(a, b)| u64::from(*a) + b.len() as u64).max().unwrap_or(u64::from(start));
    let len = end - u64::from(start);
    if len > 64 << 20 {
        return Err(format!("its segments span {len} bytes (over 64 MiB): not a firmware image"));
    }
    let mut out = vec![0xffu8; len as usize];
    for (addr, bytes) in segments {
        let off = (addr - start) as usize;
        out[off..off + bytes.len()].copy_from_slice(bytes);
    }
    Ok((out, start))
}

/// Verifies a signed image file against a public key (the development key's when `None`).
pub fn verify_file(path: &Path, public_key: Option<&[u8; 32]>) -> Result<mcuimage::Version, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let key = public_key.copied().unwrap_or(mcuimage::DEV_PUBLIC_KEY);
    mcuimage::verify(&data, &key).map(|v| v.version()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_a_binary_with_the_dev_key_and_verifies_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("app.bin");
        std::fs::write(&input, [1u8, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let output = dir.path().join("app.signed");
        let req = SignRequest {
            input,
            output: output.clone(),
            version: "1.2.3+4".into(),
            key: None,
            slot_size: 0x4_0000,
            header_size: HEADER_SIZE,
            confirm: false,
        };
        let s = sign_file(&req).unwrap();
        assert!(s.dev_key && s.payload_len == 8 && s.image_len > 0x400 + 8);
        assert_eq!(verify_file(&output, None).unwrap().to_string(), "1.2.3+4");
        // Any other key rejects it.
        assert!(verify_file(&output, Some(&[7u8; 32])).is_err());
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("x.elf");
        std::fs::write(&input, b"\x7fELF garbage").unwrap();
        let mut req = SignRequest {
            input: input.clone(),
            output: dir.path().join("o"),
            version: "1.0.0".into(),
            key: None,
            slot_size: 0,
            header_size: HEADER_SIZE,
            confirm: false,
        };
        assert!(matches!(sign_file(&req), Err(ImageError::Elf { .. })));
        std::fs::write(&input, [0u8; 4]).unwrap();
        req.version = "one".into();
        assert!(matches!(sign_file(&req), Err(ImageError::Version(_))));
        req.version = "1".into();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not a key").unwrap();
        req.key = Some(key);
        assert!(matches!(sign_file(&req), Err(ImageError::Key { .. })));
        req.key = None;
        req.slot_size = 0x100;
        assert!(matches!(sign_file(&req), Err(ImageError::Sign(_))), "does not fit the slot");
    }
}
