//! The digital-twin service: the backend's mirror of what each device reported (shadow with
//! reported / desired / delta / version, telemetry history idempotent on (device, boot_id, seq),
//! OTA campaigns), fed over MQTT.
//!
//! **Not built yet.** This crate holds the place in the workspace so the layout matches
//! DESIGN.md; it has no code and nothing uses it. It comes with the modem/MQTT/twin issue.
