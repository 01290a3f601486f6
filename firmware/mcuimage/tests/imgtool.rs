//! Interoperability with MCUboot's imgtool (PyPI `imgtool`, run as `python3 -m imgtool.main`):
//! `imgtool verify` accepts what `sign` writes, `verify` accepts what `imgtool sign` writes, and
//! both write the same bytes for the same inputs (Ed25519 is deterministic).
//!
//! Where `python3` cannot import imgtool these tests say so on stderr and pass, unless
//! `TWINBED_REQUIRE_IMGTOOL=1`, which makes a missing imgtool a failure (CI sets it, after
//! `python3 -m pip install imgtool==2.5.0`).

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{dev_key, opts, payload100, Rng};
use mcuimage::{
    public_key_from_pem, sign, verify, ImageError, PublicKeyFormat, SignOptions, SigningKey, Version,
    DEV_PUBLIC_KEY,
};

/// The dev key file, as imgtool reads it.
fn dev_pem() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/dev-ed25519.pem")
}

/// `python3 -m imgtool.main`, or None (after saying why, once) if imgtool cannot be imported.
fn imgtool() -> Option<Command> {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        let probe = Command::new("python3").args(["-c", "import imgtool.main"]).output();
        if matches!(&probe, Ok(o) if o.status.success()) {
            return true;
        }
        let why = match probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("cannot run python3: {e}"),
        };
        if std::env::var("TWINBED_REQUIRE_IMGTOOL").is_ok_and(|v| v == "1") {
            panic!("TWINBED_REQUIRE_IMGTOOL=1 but python3 cannot import imgtool ({why})");
        }
        // Straight to the process's stderr: libtest captures eprintln! of passing tests.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED imgtool interop tests: python3 cannot import imgtool ({why}); \
             install it with `python3 -m pip install imgtool==2.5.0`"
        );
        false
    });
    found.then(|| {
        let mut c = Command::new("python3");
        c.args(["-m", "imgtool.main"]);
        c
    })
}

/// Runs imgtool with `args`.
fn run(mut imgtool: Command, args: &[&str]) -> Output {
    imgtool.args(args).output().expect("running imgtool")
}

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mcuimage-imgtool").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// One way of signing: imgtool's arguments (besides `-k`, input and output) and ours.
struct Case {
    args: &'static [&'static str],
    opts: SignOptions,
    payload: Vec<u8>,
}

fn cases() -> Vec<Case> {
    const BASE: &[&str] = &["--header-size", "0x200", "--pad-header", "--align", "4"];
    let case = |extra: &'static [&'static str], opts: SignOptions, payload: Vec<u8>| {
        let args: Vec<&'static str> = BASE.iter().chain(extra).copied().collect();
        Case { args: args.leak(), opts, payload }
    };
    let big = Rng::new(7).bytes(64 * 1024 + 3);
    vec![
        // The project's command.
        case(
            &["--version", "1.2.3+4", "--slot-size", "0x20000"],
            SignOptions { slot_size: 0x20000, ..opts("1.2.3+4") },
            payload100(),
        ),
        case(
            &["--version", "0.9", "--slot-size", "0x20000"],
            SignOptions { slot_size: 0x20000, ..opts("0.9") },
            big.clone(),
        ),
        case(&["--version", "1.0.0", "--slot-size", "0x0"], opts("1.0.0"), Vec::new()),
        case(
            &["--version", "0.0.1", "--slot-size", "0x1000", "--pad"],
            SignOptions { slot_size: 0x1000, pad: true, ..opts("0.0.1") },
            payload100(),
        ),
        case(
            &["--version", "2.0.0", "--slot-size", "0x1000", "--confirm", "--security-counter", "7"],
            SignOptions { slot_size: 0x1000, confirm: true, security_counter: Some(7), ..opts("2.0.0") },
            payload100(),
        ),
        case(
            &["--version", "1.2.3", "--slot-size", "0x20000", "--security-counter", "auto"],
            SignOptions { slot_size: 0x20000, security_counter: Some(0x0102_0003), ..opts("1.2.3") },
            payload100(),
        ),
        case(
            &["--version", "3.0.0+65536", "--slot-size", "0x20000", "--public-key-format", "full"],
            SignOptions {
                slot_size: 0x20000,
                public_key_format: PublicKeyFormat::Full,
                ..opts("3.0.0+65536")
            },
            payload100(),
        ),
        case(
            &["--version", "1.1.1", "--slot-size", "0x2000", "--align", "8", "--pad"],
            SignOptions { slot_size: 0x2000, align: 8, pad: true, ..opts("1.1.1") },
            payload100(),
        ),
        case(
            &["--version", "1.1.2", "--slot-size", "0x4000", "--align", "32", "--confirm"],
            SignOptions { slot_size: 0x4000, align: 32, confirm: true, ..opts("1.1.2") },
            payload100(),
        ),
        case(
            &[
                "--version",
                "1.1.3",
                "--slot-size",
                "0x1000",
                "--max-sectors",
                "8",
                "--erased-val",
                "0",
                "--pad",
            ],
            SignOptions { slot_size: 0x1000, max_sectors: 8, erased_val: 0, pad: true, ..opts("1.1.3") },
            payload100(),
        ),
        case(
            &["--version", "255.255.65535+4294967295", "--slot-size", "0x20000", "--header-size", "0x20"],
            SignOptions { slot_size: 0x20000, header_size: 0x20, ..opts("255.255.65535+4294967295") },
            big,
        ),
    ]
}

/// imgtool signs each case with the dev key; `verify` accepts it, and `sign` writes the same
/// bytes.
#[test]
fn imgtool_signed_images_verify_and_match_ours() {
    if imgtool().is_none() {
        return;
    }
    let dir = scratch("imgtool_signed");
    let key = dev_pem();
    for (i, case) in cases().iter().enumerate() {
        let input = dir.join(format!("payload-{i}.bin"));
        let output = dir.join(format!("imgtool-{i}.bin"));
        std::fs::write(&input, &case.payload).unwrap();
        let mut args = vec!["sign", "-k", s(&key)];
        args.extend(case.args);
        args.extend([s(&input), s(&output)]);
        let out = run(imgtool().unwrap(), &args);
        assert!(out.status.success(), "imgtool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = std::fs::read(&output).unwrap();

        let v = verify(&theirs, &DEV_PUBLIC_KEY).unwrap_or_else(|e| panic!("imgtool {args:?}: {e}"));
        assert_eq!(v.version(), case.opts.version, "{args:?}");
        assert_eq!(v.security_counter(), case.opts.security_counter, "{args:?}");
        let r = v.payload_range();
        assert_eq!(&theirs[r.start as usize..r.end as usize], &case.payload[..], "{args:?}");

        let ours = sign(&case.payload, &case.opts, &dev_key()).unwrap();
        assert!(
            ours == theirs,
            "our bytes differ from imgtool {args:?} (first at {:?})",
            first_difference(&ours, &theirs)
        );
    }
}

/// `imgtool verify -k dev.pem` accepts each image `sign` writes, and reports the same version
/// and digest.
#[test]
fn imgtool_verifies_our_images() {
    if imgtool().is_none() {
        return;
    }
    let dir = scratch("ours");
    for (i, case) in cases().iter().enumerate() {
        let img = sign(&case.payload, &case.opts, &dev_key()).unwrap();
        let v = verify(&img, &DEV_PUBLIC_KEY).unwrap();
        let path = dir.join(format!("ours-{i}.bin"));
        std::fs::write(&path, &img).unwrap();
        let out = run(imgtool().unwrap(), &["verify", "-k", s(&dev_pem()), s(&path)]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "imgtool verify of {:?}: {stdout}", case.opts);
        assert!(stdout.contains("Image was correctly validated"), "{stdout}");
        assert!(stdout.contains(&format!("Image version: {}", v.version())), "{stdout}");
        assert!(stdout.contains(&format!("Image digest: {}", hex(v.hash()))), "{stdout}");
    }
}

/// imgtool refuses what it should: a tampered image of ours, and ours checked with another key.
#[test]
fn imgtool_rejects_tampered_images() {
    if imgtool().is_none() {
        return;
    }
    let dir = scratch("tampered");
    let mut img = sign(&payload100(), &opts("1.0.0"), &dev_key()).unwrap();
    img[0x200 + 50] ^= 1;
    let path = dir.join("tampered.bin");
    std::fs::write(&path, &img).unwrap();
    let out = run(imgtool().unwrap(), &["verify", "-k", s(&dev_pem()), s(&path)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Image has an invalid hash"));

    let img = sign(&payload100(), &opts("1.0.0"), &SigningKey::from_seed([9; 32])).unwrap();
    std::fs::write(&path, &img).unwrap();
    let out = run(imgtool().unwrap(), &["verify", "-k", s(&dev_pem()), s(&path)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("No signature found for the given key"));
}

/// `imgtool sign` without a key writes a hash and no signature: refused.
#[test]
fn imgtool_unsigned_image_is_refused() {
    let Some(imgtool) = imgtool() else { return };
    let dir = scratch("unsigned");
    let input = dir.join("payload.bin");
    let output = dir.join("unsigned.bin");
    std::fs::write(&input, payload100()).unwrap();
    let args = ["sign", "--header-size", "0x200", "--pad-header", "--align", "4", "--version", "1.0.0"];
    let out = run(imgtool, &[&args[..], &["--slot-size", "0x20000", s(&input), s(&output)]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = std::fs::read(&output).unwrap();
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::MissingSignature));
}

/// A key fresh from `imgtool keygen -t ed25519` loads, signs images imgtool accepts, and its
/// `imgtool getpub -e pem` form gives the same public key.
#[test]
fn imgtool_keygen_keys_load() {
    if imgtool().is_none() {
        return;
    }
    let dir = scratch("keygen");
    let key_path = dir.join("fresh.pem");
    let pub_path = dir.join("fresh.pub.pem");
    let out = run(imgtool().unwrap(), &["keygen", "-t", "ed25519", "-k", s(&key_path)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(imgtool().unwrap(), &["getpub", "-k", s(&key_path), "-e", "pem", "-o", s(&pub_path)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let key = SigningKey::from_pem(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    let public = public_key_from_pem(&std::fs::read_to_string(&pub_path).unwrap()).unwrap();
    assert_eq!(key.public_key(), public);
    assert_ne!(public, DEV_PUBLIC_KEY);

    let o = SignOptions { version: Version::new(4, 5, 6, 7), ..SignOptions::default() };
    let img = sign(&payload100(), &o, &key).unwrap();
    verify(&img, &public).unwrap();
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::KeyMismatch));
    let path = dir.join("signed.bin");
    std::fs::write(&path, &img).unwrap();
    let out = run(imgtool().unwrap(), &["verify", "-k", s(&key_path), s(&path)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = run(imgtool().unwrap(), &["verify", "-k", s(&pub_path), s(&path)]);
    assert!(out.status.success(), "verify with the public key: {}", String::from_utf8_lossy(&out.stdout));
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
