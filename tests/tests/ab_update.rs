//! A/B updates end to end on the native engine: the real bootloader (firmware/boot) and the
//! real app linked for each slot, signed with `twinbed::image` (the code behind
//! `cargo xtask sign`), booted again and again on one machine whose flash persists across power
//! cycles. Each scenario checks what the bootloader and the app print.
//!
//! The OTA agent downloads from the OTA feed (a testbed device standing in for the modem and
//! MQTT path of issue #5). The boot state machine's own exhaustive sweep is in
//! firmware/abboot/tests/power_cut.rs, on a simulated flash.

use std::path::{Path, PathBuf};
use twinbed::ab::{self, SLOT_B, SLOT_SIZE};
use twinbed::image::{sign_file, SignRequest, Trailer, HEADER_SIZE};
use twinbed::testkit;
use twinbed::Runner;
use twinbed_engine::Stop;

/// `elf` signed as `version`: `confirm` makes a factory image (padded, confirmed trailer),
/// otherwise it is padded with the trailer's magic only (imgtool's `--pad`): pending.
fn sign(elf: &Path, version: &str, confirm: bool) -> Vec<u8> {
    let trailer = if confirm { Trailer::Confirmed } else { Trailer::Pending };
    ab::image(elf, version, trailer).unwrap_or_else(|e| panic!("signing {}: {e}", elf.display()))
}

/// A machine with the bootloader and a factory image (A, confirmed).
fn device(fw: &twinbed::firmware::AbFirmware) -> Runner {
    let board = twinbed::Board::builtin("mps2-an385").unwrap();
    ab::device(fw, &board, &sign(&fw.app_a, "1.0.0", true)).unwrap()
}

/// Boots until the guest exits (the test-mode app after its samples, or the bootloader when
/// nothing boots), then power-cycles; returns the console and the exit status.
fn boot(m: &mut Runner) -> (String, i32) {
    let b = ab::boot(m);
    match b.stop {
        Stop::Exit(code) => (b.console, code),
        Stop::Budget => panic!("no exit within 10 s of virtual time:\n{}", b.console),
        other => panic!("unexpected stop {other:?}:\n{}", b.console),
    }
}

fn has(console: &str, line: &str) -> bool {
    console.lines().any(|l| l == line)
}

#[test]
fn a_factory_image_boots_without_a_trial() {
    let fw = testkit::ab_firmware();
    let mut m = device(&fw);
    let (c, status) = boot(&mut m);
    assert_eq!(status, 0, "{c}");
    assert!(has(&c, "boot: booting slot A (1.0.0+0)"), "{c}");
    assert!(has(&c, "update: running from slot A (confirmed)"), "{c}");
}

#[test]
fn an_update_boots_on_trial_confirms_and_stays() {
    let fw = testkit::ab_firmware();
    let mut m = device(&fw);
    assert!(m.machine.poke(SLOT_B, &sign(&fw.app_b, "1.1.0", false)));
    let (c, _) = boot(&mut m);
    assert!(c.contains("slot B") && c.contains("trial"), "the bootloader starts B's trial:\n{c}");
    assert!(has(&c, "update: slot B on trial, health check passed: confirmed"), "{c}");
    let (c, status) = boot(&mut m);
    assert_eq!(status, 0);
    assert!(has(&c, "boot: booting slot B (1.1.0+0)"), "B is confirmed now:\n{c}");
    assert!(has(&c, "update: running from slot B (confirmed)"), "{c}");
}

#[test]
fn an_update_that_fails_its_health_check_is_reverted_for_good() {
    let fw = testkit::ab_firmware();
    let mut m = device(&fw);
    assert!(m.machine.poke(SLOT_B, &sign(&fw.app_b_unhealthy, "1.1.0", false)));
    let (c, _) = boot(&mut m);
    assert!(
        has(&c, "update: slot B on trial, health check FAILED: not confirming (the next boot reverts it)"),
        "{c}"
    );
    let (c, status) = boot(&mut m);
    assert_eq!(status, 0);
    assert!(c.to_lowercase().contains("revert"), "the bootloader says it reverts B:\n{c}");
    assert!(has(&c, "boot: booting slot A (1.0.0+0)"), "{c}");
    // And never tries it again.
    let (c, _) = boot(&mut m);
    assert!(has(&c, "boot: booting slot A (1.0.0+0)") && !c.contains("trial"), "{c}");
}

#[test]
fn a_downgrade_is_refused() {
    let fw = testkit::ab_firmware();
    let mut m = device(&fw);
    assert!(m.machine.poke(SLOT_B, &sign(&fw.app_b, "0.9.0", false)));
    let (c, status) = boot(&mut m);
    assert_eq!(status, 0);
    assert!(has(&c, "boot: slot B (0.9.0+0) refused: not newer than the confirmed 1.0.0+0"), "{c}");
    assert!(has(&c, "boot: booting slot A (1.0.0+0)"), "{c}");
}

#[test]
fn tampered_and_foreign_images_are_rejected_and_the_running_image_keeps_running() {
    let fw = testkit::ab_firmware();
    let dir = tempfile::tempdir().unwrap();
    let good = sign(&fw.app_b, "1.1.0", false);
    // A flipped bit in the payload, in the header, in the TLVs; an image signed with another key;
    // a truncated one (its end erased).
    let tlv_at = {
        let hdr = &good[..32];
        let img_size = u32::from_le_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]) as usize;
        usize::from(HEADER_SIZE) + img_size + 8
    };
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    for (what, at) in [("payload", 0x500usize), ("header", 20), ("TLV", tlv_at)] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        cases.push((what, bad));
    }
    let mut truncated = good.clone();
    for b in &mut truncated[tlv_at - 64..SLOT_SIZE as usize - 64] {
        *b = 0xff;
    }
    cases.push(("truncated", truncated));
    let other_key = dir.path().join("other.pem");
    std::fs::write(
        &other_key,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBERERERERERERERERERERERERERERERERERERERERER\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let foreign_path: PathBuf = dir.path().join("foreign.img");
    let req = SignRequest {
        input: fw.app_b.clone(),
        output: foreign_path.clone(),
        version: "1.1.0".into(),
        key: Some(other_key),
        slot_size: SLOT_SIZE,
        header_size: HEADER_SIZE,
        confirm: true,
    };
    sign_file(&req).unwrap();
    cases.push(("another key", std::fs::read(&foreign_path).unwrap()));

    // An image for the other slot: app A (linked for slot A), signed as a newer version, put
    // into slot B.
    cases.push(("linked for slot A", sign(&fw.app_a, "1.2.0", false)));
    for (what, image) in cases {
        let mut m = device(&fw);
        assert!(m.machine.poke(SLOT_B, &image));
        let (c, status) = boot(&mut m);
        assert_eq!(status, 0, "{what}: {c}");
        assert!(
            c.contains("slot B") && c.to_lowercase().contains("reject"),
            "{what}: an event says why:\n{c}"
        );
        assert!(has(&c, "boot: booting slot A (1.0.0+0)"), "{what}: A keeps running:\n{c}");
    }
}

/// Interop: our bootloader boots an image that `imgtool sign` (MCUboot's own tool, from PyPI)
/// signed with the development key. Skipped, saying so, where imgtool is missing, unless
/// `TWINBED_REQUIRE_IMGTOOL=1` (set by `cargo xtask test`, which installs it).
#[test]
fn the_bootloader_boots_an_image_signed_by_imgtool() {
    let imgtool_here = std::process::Command::new("python3")
        .args(["-c", "import imgtool.main"])
        .status()
        .is_ok_and(|s| s.success());
    if !imgtool_here {
        assert!(
            std::env::var("TWINBED_REQUIRE_IMGTOOL").is_err(),
            "imgtool is required here: python3 -m pip install imgtool==2.5.0"
        );
        eprintln!("SKIPPED: python3 cannot import imgtool (python3 -m pip install imgtool==2.5.0)");
        return;
    }
    let fw = testkit::ab_firmware();
    let dir = tempfile::tempdir().unwrap();
    let (payload, load_addr) = twinbed::image::flatten_elf(&std::fs::read(&fw.app_b).unwrap()).unwrap();
    assert_eq!(load_addr, SLOT_B + u32::from(HEADER_SIZE));
    let bin = dir.path().join("app-b.bin");
    std::fs::write(&bin, payload).unwrap();
    let img = dir.path().join("app-b-imgtool.img");
    let key = twinbed::firmware::repo_root().unwrap().join("firmware/mcuimage/keys/dev-ed25519.pem");
    let (header, slot) = (format!("{HEADER_SIZE:#x}"), format!("{SLOT_SIZE:#x}"));
    let out = std::process::Command::new("python3")
        .args(["-m", "imgtool.main", "sign", "--header-size", &header, "--align", "4", "--version", "1.3.0"])
        .args(["--pad-header", "--slot-size", &slot, "--pad", "-k"])
        .arg(&key)
        .arg(&bin)
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success(), "imgtool sign: {}", String::from_utf8_lossy(&out.stderr));
    let mut m = device(&fw);
    assert!(m.machine.poke(SLOT_B, &std::fs::read(&img).unwrap()));
    let (c, _) = boot(&mut m);
    assert!(has(&c, "update: slot B on trial, health check passed: confirmed"), "{c}");
    let (c, _) = boot(&mut m);
    assert!(has(&c, "boot: booting slot B (1.3.0+0)"), "{c}");
}

/// `cargo xtask sweep`'s sweep (twinbed::sweep), quick: power cuts, seeded and torn, across a
/// whole update (the OTA agent's erase and download, mark, trial, confirm) on the real
/// bootloader and app. The device always boots A 1.0.0 or B 1.1.0, ends on B or on A, and from A
/// a newer update completes.
#[test]
fn a_power_cut_at_any_flash_operation_of_an_update_never_bricks() {
    let fw = testkit::ab_firmware();
    let board = twinbed::Board::builtin("mps2-an385").unwrap();
    // Quick: about 32 cut points spread over the update and its first and last few operations,
    // two torn variants each (`cargo xtask sweep` does four, `--full` every operation).
    let opts = twinbed::sweep::SweepOptions { variants: 2, ..Default::default() };
    let r = twinbed::sweep::run(&fw, &board, &opts, &mut |m| eprintln!("sweep: {m}")).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.bricked, 0, "{:#?}", r.failures);
    assert!(r.operations > 300, "the erase, download, mark, trial and confirm are flash operations: {r:?}");
    assert!(r.cuts >= 60, "{r:?}");
    assert_eq!(r.completed + r.stayed_old, r.cuts);
    assert!(r.completed > 0 && r.stayed_old > 0, "cuts late in the trial revert it: {r:?}");

    // The memo of power-on states and the threads change nothing but speed: the same cuts one
    // thread at a time, every check boot run, give the same report.
    let some = twinbed::sweep::SweepOptions { variants: 1, stride: r.operations / 6, ..Default::default() };
    let fast = twinbed::sweep::run(&fw, &board, &some, &mut |_| {}).unwrap();
    let plain = twinbed::sweep::SweepOptions { memo: false, threads: 1, ..some };
    let slow = twinbed::sweep::run(&fw, &board, &plain, &mut |_| {}).unwrap();
    assert!(
        slow.boots_run > fast.boots_run,
        "{} boots with the memo, {} without",
        fast.boots_run,
        slow.boots_run
    );
    let verdicts = |r: twinbed::sweep::SweepReport| twinbed::sweep::SweepReport { boots_run: 0, ..r };
    assert_eq!(verdicts(fast), verdicts(slow));
}

#[test]
fn the_ota_agent_downloads_resumes_after_a_dropped_link_and_reboots_into_the_trial() {
    let fw = testkit::ab_firmware();
    let mut m = device(&fw);
    let image = ab::image(&fw.app_b, "1.1.0", Trailer::None).unwrap();
    let half = (image.len() as u32 / 2) & !3;
    let feed = m.machine.ota_feed().expect("mps2-an385 has the OTA feed");
    feed.offer(image.clone());
    feed.set_available(half);
    let (c, status) = boot(&mut m);
    assert_eq!(status, 0, "{c}");
    assert!(has(&c, "boot: booting slot A (1.0.0+0)"), "{c}");
    assert!(
        c.contains("ota: erasing slot B"),
        "slot B held no image yet (zeroed memory reads as damaged):\n{c}"
    );
    assert!(
        // Rows of 256 bytes go in whole: the row holding byte `half` waits.
        has(
            &c,
            &format!(
                "ota: slot B: {} of {} bytes stored; waiting for the rest",
                half / 256 * 256,
                image.len()
            )
        ),
        "{c}"
    );

    // The rest arrives; after a power cycle the agent resumes, verifies, marks and reboots.
    m.machine.ota_feed().unwrap().set_available(image.len() as u32);
    let (c, status) = boot(&mut m);
    assert_eq!(status, 0, "{c}");
    assert!(
        has(&c, &format!("ota: slot B: resumed ({} bytes were already stored)", half / 256 * 256)),
        "{c}"
    );
    assert!(has(&c, "ota: update 1.1.0+0 stored in slot B and verified; rebooting into its trial"), "{c}");
    assert!(has(&c, "update: slot B on trial, health check passed: confirmed"), "{c}");
    assert!(has(&c, "ota: the update on offer is linked for slot B, which runs: nothing to do"), "{c}");
    let (c, _) = boot(&mut m);
    assert!(has(&c, "boot: booting slot B (1.1.0+0)"), "{c}");
}

#[test]
fn the_ota_agent_does_not_retry_a_rejected_update() {
    let fw = testkit::ab_firmware();
    let mut m = device(&fw);
    m.machine.ota_feed().unwrap().offer(ab::image(&fw.app_b_unhealthy, "1.1.0", Trailer::None).unwrap());
    let (c, _) = boot(&mut m);
    assert!(
        has(&c, "update: slot B on trial, health check FAILED: not confirming (the next boot reverts it)"),
        "{c}"
    );
    let (c, _) = boot(&mut m);
    assert!(has(&c, "boot: booting slot A (1.0.0+0)"), "{c}");
    assert!(has(&c, "ota: slot B holds this update, rejected before: not retrying"), "{c}");
}
