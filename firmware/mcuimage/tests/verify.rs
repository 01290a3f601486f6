//! sign/verify round trips and every kind of bad image: bit and byte flips, truncation, wrong
//! key, oversize headers, malformed TLV areas, garbage, missing signature; the streaming reader.

mod common;

use common::{assemble, dev_key, opts, other_key, payload100, standard_tlvs, Rng};
use mcuimage::tlv::kind;
use mcuimage::{
    public_key_from_pem, sign, verify, verify_from, ImageError, ImageHeader, PublicKeyFormat, SignError,
    SignOptions, VerifyError, Version, DEV_PUBLIC_KEY, READ_CHUNK,
};

const GOLDEN: &[u8] = include_bytes!("data/imgtool-1.2.3+4.bin");
const GOLDEN_PADDED: &[u8] = include_bytes!("data/imgtool-2.0.0-sc7-confirm-slot4k.bin");

#[test]
fn dev_key_matches_its_public_half() {
    assert_eq!(dev_key().public_key(), DEV_PUBLIC_KEY);
    assert_eq!(public_key_from_pem(include_str!("../keys/dev-ed25519.pub.pem")), Ok(DEV_PUBLIC_KEY));
    assert_eq!(public_key_from_pem(mcuimage::DEV_SECRET_KEY_PEM), Ok(DEV_PUBLIC_KEY));
    // `imgtool getpubhash -k keys/dev-ed25519.pem`
    let getpubhash = "698337def0d4fad90fd6e6db1e9b4bda7376a0720a068839789fb5e1ba25d349";
    assert_eq!(hex(&mcuimage::key_hash(&DEV_PUBLIC_KEY)), getpubhash);
    assert!(public_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    assert!(mcuimage::SigningKey::from_pem("not a key").is_err());
    // The Debug form shows no secret.
    let dbg = format!("{:?}", dev_key());
    assert!(dbg.starts_with("SigningKey { public_key: [193, 243,"), "{dbg}");
}

#[test]
fn sign_reproduces_imgtool_golden_images() {
    let ours =
        sign(&payload100(), &SignOptions { slot_size: 0x20000, ..opts("1.2.3+4") }, &dev_key()).unwrap();
    assert_eq!(hex(&ours), hex(GOLDEN));
    let padded = SignOptions { slot_size: 0x1000, confirm: true, security_counter: Some(7), ..opts("2.0.0") };
    assert_eq!(hex(&sign(&payload100(), &padded, &dev_key()).unwrap()), hex(GOLDEN_PADDED));
}

#[test]
fn round_trip() {
    let payload = payload100();
    for (o, sc) in [
        (opts("1.2.3+4"), None),
        (SignOptions { security_counter: Some(0x0102_0003), ..opts("1.2.3") }, Some(0x0102_0003)),
        (SignOptions { public_key_format: PublicKeyFormat::Full, ..opts("0.1") }, None),
        (SignOptions { header_size: 32, ..opts("9.9.9+9") }, None),
        (SignOptions { slot_size: 0x1000, pad: true, ..opts("1") }, None),
    ] {
        let img = sign(&payload, &o, &dev_key()).unwrap();
        let v = verify(&img, &DEV_PUBLIC_KEY).unwrap_or_else(|e| panic!("{o:?}: {e}"));
        assert_eq!(v.version(), o.version);
        assert_eq!(v.security_counter(), sc);
        let r = v.payload_range();
        assert_eq!(r.start, u32::from(o.header_size));
        assert_eq!(&img[r.start as usize..r.end as usize], &payload[..]);
        assert_eq!(v.header().protect_tlv_size, if sc.is_some() { 12 } else { 0 });
        assert_eq!(v.protected_tlv_range().len(), usize::from(v.header().protect_tlv_size));
        // No padding: the image is the whole output; padded: the rest is trailer.
        assert!(v.image_len() as usize <= img.len());
        if !o.pad {
            assert_eq!(v.image_len() as usize, img.len());
        }
    }
    // An empty payload is an image too.
    let img = sign(&[], &opts("1.0.0"), &dev_key()).unwrap();
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY).unwrap().payload_range(), 0x200..0x200);
}

#[test]
fn verifies_imgtool_golden_images() {
    let v = verify(GOLDEN, &DEV_PUBLIC_KEY).unwrap();
    assert_eq!(v.version(), Version::new(1, 2, 3, 4));
    assert_eq!(v.image_len() as usize, GOLDEN.len());
    let v = verify(GOLDEN_PADDED, &DEV_PUBLIC_KEY).unwrap();
    assert_eq!((v.version(), v.security_counter()), (Version::new(2, 0, 0, 0), Some(7)));
    assert_eq!(v.image_len(), 0x200 + 100 + 12 + 144);
}

/// Flips every bit, then every byte (xor 0xff), of a small image with a protected and an
/// unprotected TLV area, one at a time: each flipped image must be refused. No byte is exempt:
/// the header's padding, `_pad1` and flags are hashed like the rest of the header, and each byte
/// of the unprotected area is either structure (checked) or a value (compared).
#[test]
fn every_flip_is_rejected() {
    let o = SignOptions { security_counter: Some(3), ..opts("1.2.3+4") };
    let img = sign(&payload100()[..48], &o, &dev_key()).unwrap();
    verify(&img, &DEV_PUBLIC_KEY).unwrap();
    let mut bad = img.clone();
    let mut flips = 0;
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..img.len() {
        for mask in [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            bad[i] ^= mask;
            match verify(&bad, &DEV_PUBLIC_KEY) {
                Ok(v) => panic!("flipping byte {i:#x} with {mask:#04x} still verifies: {v:?}"),
                Err(e) => *seen.entry(variant(&e)).or_insert(0) += 1,
            }
            bad[i] ^= mask;
            flips += 1;
        }
    }
    assert_eq!(flips, img.len() * 9);
    // Every flip of the signature reaches the Ed25519 check, every flip of the key hash is a
    // key mismatch, and the hash catches everything in header, padding, payload, protected TLVs
    // that the structural checks let through.
    assert_eq!(seen["BadSignature"], 64 * 9, "{seen:?}");
    assert_eq!(seen["KeyMismatch"], 32 * 9, "{seen:?}");
    assert!(seen["HashMismatch"] > 0x200 * 9 - 100, "{seen:?}");
}

/// The name of an error's variant, for tallies.
fn variant(e: &ImageError) -> String {
    format!("{e:?}").split([' ', '{']).next().unwrap_or_default().to_string()
}

/// What no check covers: bytes after the image (slot padding and MCUboot's swap trailer, which
/// the bootloader writes at run time) are no part of the image.
#[test]
fn bytes_after_the_image_are_not_covered() {
    let o = SignOptions { slot_size: 0x1000, confirm: true, ..opts("1.0.0") };
    let img = sign(&payload100(), &o, &dev_key()).unwrap();
    let end = verify(&img, &DEV_PUBLIC_KEY).unwrap().image_len() as usize;
    let mut slot = img.clone();
    for b in &mut slot[end..] {
        *b ^= 0x5a;
    }
    assert_eq!(verify(&slot, &DEV_PUBLIC_KEY).unwrap().image_len() as usize, end);
}

#[test]
fn every_truncation_is_rejected() {
    let img =
        sign(&payload100(), &SignOptions { security_counter: Some(1), ..opts("1.0.0") }, &dev_key()).unwrap();
    for n in 0..img.len() {
        match verify(&img[..n], &DEV_PUBLIC_KEY) {
            Err(ImageError::Truncated { available, .. }) => assert_eq!(available as usize, n),
            other => panic!("truncated to {n} bytes: {other:?}"),
        }
    }
}

#[test]
fn wrong_key_is_rejected() {
    let img = sign(&payload100(), &opts("1.0.0"), &dev_key()).unwrap();
    let other = other_key().public_key();
    assert_eq!(verify(&img, &other), Err(ImageError::KeyMismatch));
    // Signed by another key, checked against the dev key.
    let img = sign(&payload100(), &opts("1.0.0"), &other_key()).unwrap();
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::KeyMismatch));
    // PUBKEY instead of KEYHASH.
    let o = SignOptions { public_key_format: PublicKeyFormat::Full, ..opts("1.0.0") };
    let img = sign(&payload100(), &o, &dev_key()).unwrap();
    assert_eq!(verify(&img, &other), Err(ImageError::KeyMismatch));
    // Without KEYHASH (optional) only the signature can tell.
    let key = dev_key();
    let img = assemble(Version::default(), &payload100(), &[], |d| {
        vec![(kind::SHA256, d.to_vec()), (kind::ED25519, key.sign(d).to_vec())]
    });
    verify(&img, &DEV_PUBLIC_KEY).unwrap();
    assert_eq!(verify(&img, &other), Err(ImageError::BadSignature));
    // A key hash that matches but a signature by another key.
    let img = assemble(Version::default(), &payload100(), &[], |d| {
        let mut t = standard_tlvs(&key, d);
        t[2].1 = other_key().sign(d).to_vec();
        t
    });
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::BadSignature));
    // Not a valid Ed25519 point (y = 2 is not on the curve) / a small-order point (identity).
    let mut bad_point = [0u8; 32];
    bad_point[0] = 2;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for pk in [bad_point, identity] {
        let img = assemble(Version::default(), &payload100(), &[], |d| {
            vec![(kind::SHA256, d.to_vec()), (kind::ED25519, key.sign(d).to_vec())]
        });
        assert!(
            matches!(verify(&img, &pk), Err(ImageError::BadPublicKey | ImageError::BadSignature)),
            "{:?}",
            verify(&img, &pk)
        );
    }
}

#[test]
fn no_signature_is_rejected() {
    // What `imgtool sign` writes without -k: SHA256 only.
    let img = assemble(Version::default(), &payload100(), &[], |d| vec![(kind::SHA256, d.to_vec())]);
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::MissingSignature));
    let key = dev_key();
    let img = assemble(Version::default(), &payload100(), &[], |d| {
        vec![(kind::SHA256, d.to_vec()), (kind::KEYHASH, mcuimage::key_hash(&key.public_key()).to_vec())]
    });
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::MissingSignature));
    let img =
        assemble(Version::default(), &payload100(), &[], |d| vec![(kind::ED25519, key.sign(d).to_vec())]);
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::MissingHash));
    let img = assemble(Version::default(), &payload100(), &[], |_| vec![]);
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(ImageError::MissingHash));
}

#[test]
fn oversize_header_fields_are_rejected() {
    let img = sign(&payload100(), &opts("1.0.0"), &dev_key()).unwrap();
    let with = |f: &dyn Fn(&mut ImageHeader)| {
        let mut h = ImageHeader::parse(&img).unwrap();
        f(&mut h);
        let mut b = img.clone();
        b[..32].copy_from_slice(&h.to_bytes());
        verify(&b, &DEV_PUBLIC_KEY)
    };
    let len = img.len() as u32;
    assert_eq!(
        with(&|h| h.img_size = u32::MAX),
        Err(ImageError::TooLarge { size: 0x200 + u64::from(u32::MAX) })
    );
    assert_eq!(
        with(&|h| {
            h.hdr_size = u16::MAX;
            h.protect_tlv_size = u16::MAX;
            h.img_size = u32::MAX - 0x1_0000;
        }),
        Err(ImageError::TooLarge { size: u64::from(u32::MAX) + 0xfffe })
    );
    // Sums that fit in 32 bits but not in the slice.
    assert!(
        matches!(with(&|h| h.img_size = 0x10_0000), Err(ImageError::Truncated { available, .. }) if available == len)
    );
    assert!(matches!(with(&|h| h.img_size = u32::MAX - 0x200 - 4), Err(ImageError::Truncated { .. })));
    assert!(matches!(with(&|h| h.hdr_size = u16::MAX), Err(ImageError::Truncated { .. })));
    // A protected size with no protected area there.
    assert_eq!(
        with(&|h| h.protect_tlv_size = u16::MAX),
        Err(ImageError::BadTlvInfo { offset: 0x200 + 100, magic: 0x6907 })
    );
    assert_eq!(with(&|h| h.hdr_size = 0), Err(ImageError::BadHeaderSize { hdr_size: 0 }));
    assert_eq!(
        with(&|h| h.flags = mcuimage::flags::ENCRYPTED_AES128 | mcuimage::flags::RAM_LOAD),
        Err(ImageError::UnsupportedFlags { flags: mcuimage::flags::ENCRYPTED_AES128 })
    );
    assert_eq!(
        with(&|h| h.flags = mcuimage::flags::COMPRESSED_LZMA2),
        Err(ImageError::UnsupportedFlags { flags: mcuimage::flags::COMPRESSED_LZMA2 })
    );
    // Sizes that stay in range but move the payload: caught by the structure or the hash.
    assert!(with(&|h| h.img_size -= 4).is_err());
    assert!(with(&|h| h.hdr_size += 4).is_err());
}

#[test]
fn malformed_tlv_areas_are_rejected() {
    let key = dev_key();
    let v = Version::default();
    let p = payload100();
    let tlv_off = 0x200 + 100u32;
    let check = |img: Vec<u8>, want: ImageError| assert_eq!(verify(&img, &DEV_PUBLIC_KEY), Err(want));

    // Unknown TLVs are fine in the protected area (hashed and signed)...
    let img = assemble(v, &p, &[(kind::DEPENDENCY, vec![0; 12]), (0x00a0, b"vendor".to_vec())], |d| {
        standard_tlvs(&key, d)
    });
    assert_eq!(verify(&img, &DEV_PUBLIC_KEY).unwrap().security_counter(), None);
    // ...but not in the unprotected one, which nothing covers.
    for k in [kind::SEC_CNT, kind::SHA384, kind::ECDSA_SIG, kind::SIG_PURE, 0x00a0, 0x0110, 0x2400] {
        let img = assemble(v, &p, &[], |d| {
            let mut t = standard_tlvs(&key, d);
            t.insert(1, (k, vec![0; 4]));
            t
        });
        check(img, ImageError::UnexpectedTlv { kind: k, offset: tlv_off + 4 + 36 });
    }
    // The unprotected kinds may not be in the protected area.
    for k in [kind::SHA256, kind::KEYHASH, kind::PUBKEY, kind::ED25519] {
        let img = assemble(v, &p, &[(k, vec![0; 32])], |d| standard_tlvs(&key, d));
        check(img, ImageError::UnexpectedTlv { kind: k, offset: tlv_off + 4 });
    }
    // Duplicates.
    for i in 0..3 {
        let img = assemble(v, &p, &[], |d| {
            let mut t = standard_tlvs(&key, d);
            t.push(t[i].clone());
            t
        });
        check(img, ImageError::DuplicateTlv { kind: [kind::SHA256, kind::KEYHASH, kind::ED25519][i] });
    }
    let img = assemble(v, &p, &[(kind::SEC_CNT, vec![1, 0, 0, 0]), (kind::SEC_CNT, vec![2, 0, 0, 0])], |d| {
        standard_tlvs(&key, d)
    });
    check(img, ImageError::DuplicateTlv { kind: kind::SEC_CNT });
    // Wrong lengths.
    for (i, k) in [kind::SHA256, kind::KEYHASH, kind::ED25519].into_iter().enumerate() {
        let img = assemble(v, &p, &[], |d| {
            let mut t = standard_tlvs(&key, d);
            t[i].1.pop();
            t
        });
        check(img, ImageError::BadTlvLength { kind: k, len: [31, 31, 63][i] });
    }
    let img = assemble(v, &p, &[(kind::SEC_CNT, vec![1, 0, 0])], |d| standard_tlvs(&key, d));
    check(img, ImageError::BadTlvLength { kind: kind::SEC_CNT, len: 3 });

    // Hand-edited infos and lengths of a signed image.
    let img = sign(&p, &opts("1.0.0"), &key).unwrap();
    let edit = |at: usize, bytes: &[u8]| {
        let mut b = img.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let t = tlv_off as usize;
    check(edit(t, &[0x08, 0x69]), ImageError::BadTlvInfo { offset: tlv_off, magic: 0x6908 });
    check(edit(t + 2, &[3, 0]), ImageError::BadTlv { offset: tlv_off });
    check(edit(t + 2, &[4, 0]), ImageError::MissingHash);
    // A total one byte short: the last TLV runs past the area. One byte long: the slice ends.
    check(edit(t + 2, &[0x8f, 0]), ImageError::BadTlv { offset: tlv_off + 4 + 36 + 36 });
    check(
        edit(t + 2, &[0x91, 0]),
        ImageError::Truncated { needed: u64::from(tlv_off) + 0x91, available: img.len() as u32 },
    );
    // A total that leaves 1..3 bytes after the last TLV.
    let mut longer = img.clone();
    longer.extend_from_slice(&[0; 3]);
    for extra in 1..=3u8 {
        let mut b = longer.clone();
        b[t + 2] = 0x90 + extra;
        assert_eq!(verify(&b, &DEV_PUBLIC_KEY), Err(ImageError::BadTlv { offset: tlv_off + 0x90 }));
    }
    // A TLV length past the area.
    check(edit(t + 4 + 2, &[0xff, 0xff]), ImageError::BadTlv { offset: tlv_off + 4 });

    // Protected area: info magic, size mismatch, total too small.
    let img = sign(&p, &SignOptions { security_counter: Some(5), ..opts("1.0.0") }, &key).unwrap();
    let edit = |at: usize, bytes: &[u8]| {
        let mut b = img.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        verify(&b, &DEV_PUBLIC_KEY)
    };
    assert_eq!(edit(t, &[0x07, 0x69]), Err(ImageError::BadTlvInfo { offset: tlv_off, magic: 0x6907 }));
    assert_eq!(edit(t + 2, &[13, 0]), Err(ImageError::ProtectedSizeMismatch { header: 12, info: 13 }));
    // Header and info agree on a size that does not hold the TLV (hash checks come later).
    let mut b = img.clone();
    b[10..12].copy_from_slice(&[2, 0]);
    b[t + 2..t + 4].copy_from_slice(&[2, 0]);
    assert_eq!(verify(&b, &DEV_PUBLIC_KEY), Err(ImageError::BadTlv { offset: tlv_off }));
}

#[test]
fn garbage_is_rejected() {
    let mut rng = Rng::new(0x6d63_7562_6f6f_7421);
    for _ in 0..2000 {
        let n = rng.below(2048);
        let g = rng.bytes(n);
        assert!(verify(&g, &DEV_PUBLIC_KEY).is_err());
    }
    // Garbage behind a good magic, with small sizes so the walk goes further.
    for _ in 0..2000 {
        let n = 64 + rng.below(1024);
        let mut g = rng.bytes(n);
        g[..4].copy_from_slice(&mcuimage::IMAGE_MAGIC.to_le_bytes());
        g[8..10].copy_from_slice(&(32 + rng.below(32) as u16).to_le_bytes());
        g[10..12].copy_from_slice(&[0, 0]);
        let img_size = rng.below(n) as u32;
        g[12..16].copy_from_slice(&img_size.to_le_bytes());
        g[18..20].copy_from_slice(&[0, 0]);
        let at = 32 + rng.below(n - 36);
        g[at..at + 2].copy_from_slice(&0x6907u16.to_le_bytes());
        assert!(verify(&g, &DEV_PUBLIC_KEY).is_err());
    }
    // A few random bytes changed in a good image.
    let img =
        sign(&payload100(), &SignOptions { security_counter: Some(9), ..opts("1.0.0") }, &dev_key()).unwrap();
    for _ in 0..2000 {
        let mut b = img.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(b.len());
            b[i] = b[i].wrapping_add(1 + rng.below(255) as u8);
        }
        assert!(verify(&b, &DEV_PUBLIC_KEY).is_err());
    }
    assert_eq!(verify(&[0xff; 4096], &DEV_PUBLIC_KEY), Err(ImageError::Empty));
    assert_eq!(verify(&[0; 4096], &DEV_PUBLIC_KEY), Err(ImageError::BadMagic { found: 0 }));
}

/// A bootloader's view: a 128 KiB slot read through a closure, in chunks of at most
/// READ_CHUNK bytes, never past the slot.
#[test]
fn verify_from_reads_a_slot_in_chunks() {
    const SLOT: u32 = 128 * 1024;
    let mut rng = Rng::new(42);
    let payload = rng.bytes(100 * 1024);
    let o = SignOptions { slot_size: SLOT, pad: true, ..opts("3.1.4+1") };
    let slot = sign(&payload, &o, &dev_key()).unwrap();
    assert_eq!(slot.len(), SLOT as usize);
    let (mut reads, mut biggest) = (0, 0);
    let mut flash = |offset: u32, buf: &mut [u8]| -> Result<(), &'static str> {
        let start = offset as usize;
        assert!(start + buf.len() <= SLOT as usize, "read past the slot");
        buf.copy_from_slice(&slot[start..start + buf.len()]);
        reads += 1;
        biggest = biggest.max(buf.len());
        Ok(())
    };
    let v = verify_from(&mut flash, SLOT, &DEV_PUBLIC_KEY).unwrap();
    assert_eq!(v.version(), "3.1.4+1".parse().unwrap());
    assert_eq!(v.payload_range(), 0x200..0x200 + 100 * 1024);
    assert_eq!(biggest, READ_CHUNK);
    assert!(reads > (100 * 1024) / READ_CHUNK);

    // The slot length bounds the image.
    let mut flash = |offset: u32, buf: &mut [u8]| -> Result<(), ()> {
        buf.copy_from_slice(&slot[offset as usize..offset as usize + buf.len()]);
        Ok(())
    };
    assert!(matches!(
        verify_from(&mut flash, v.image_len() - 1, &DEV_PUBLIC_KEY),
        Err(VerifyError::Image(ImageError::Truncated { .. }))
    ));
    verify_from(&mut flash, v.image_len(), &DEV_PUBLIC_KEY).unwrap();

    // A failing read is reported with its offset.
    let mut failing = |offset: u32, buf: &mut [u8]| -> Result<(), u32> {
        if offset >= 0x1000 {
            return Err(0xdead);
        }
        buf.copy_from_slice(&slot[offset as usize..offset as usize + buf.len()]);
        Ok(())
    };
    let e = verify_from(&mut failing, SLOT, &DEV_PUBLIC_KEY).unwrap_err();
    assert!(matches!(e, VerifyError::Read { offset, error: 0xdead } if offset >= 0x1000), "{e:?}");
    assert!(e.to_string().starts_with("reading the image at offset 0x"), "{e}");
}

#[test]
fn sign_refuses_bad_options() {
    let k = dev_key();
    let p = payload100();
    assert_eq!(
        sign(&p, &SignOptions { header_size: 31, ..opts("1") }, &k),
        Err(SignError::HeaderTooSmall(31))
    );
    assert_eq!(sign(&p, &SignOptions { align: 3, ..opts("1") }, &k), Err(SignError::BadAlign(3)));
    assert_eq!(sign(&p, &SignOptions { pad: true, ..opts("1") }, &k), Err(SignError::PadWithoutSlotSize));
    assert_eq!(
        sign(&p, &SignOptions { pad_header: false, ..opts("1") }, &k),
        Err(SignError::HeaderNotZeroed(0x200))
    );
    // image 0x200 + 100 + 144 (TLVs: 4 + 36 + 36 + 68) = 756, trailer 128 * 3 * 4 + 8 * 4 + 16 = 1584.
    assert_eq!(
        sign(&p, &SignOptions { slot_size: 2339, ..opts("1") }, &k),
        Err(SignError::ExceedsSlot { image: 756, trailer: 1584, slot: 2339 })
    );
    assert_eq!(
        sign(&p, &SignOptions { slot_size: 2340, pad: true, ..opts("1") }, &k).map(|i| i.len()),
        Ok(2340)
    );
    // Without --pad-header the payload carries the (zeroed) header space.
    let mut zeroed = vec![0; 0x200];
    zeroed.extend_from_slice(&p);
    let a = sign(&zeroed, &SignOptions { pad_header: false, erased_val: 0, ..opts("1") }, &k).unwrap();
    let b = sign(&p, &SignOptions { erased_val: 0, ..opts("1") }, &k).unwrap();
    assert_eq!(a, b);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
