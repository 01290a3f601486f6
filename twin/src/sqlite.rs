//! [`Store`] on SQLite (`rusqlite`, SQLite compiled in), in a file or in memory.
//!
//! Schema (`PRAGMA user_version = 1`):
//!
//! | table | key | columns |
//! |---|---|---|
//! | `devices` | `id` | `received`, `duplicates`, `last_boot` |
//! | `shadows` | `device` | `reported` (JSON text), `desired` (JSON text), `version` |
//! | `telemetry` | `(device, boot, seq)` | `t`, `first`, `n`, `min`, `max`, `mean` |
//! | `events` | `(device, boot, seq)` | `t`, `kind`, `body` (JSON text: the kind's fields) |
//! | `dropped` | `(device, boot, first_seq, last_seq)` | seq ranges declared gone by `dropped` events |
//! | `watermarks` | `(device, boot)` | `seq` |
//! | `rejections` | `reason` | `count` |
//! | `counters` | `name` | `value` |
//!
//! A file database runs in WAL mode with `synchronous = NORMAL` (a commit survives a crash of
//! the process; a power cut may lose the last commits, never corrupt the file) and a 5 s busy
//! timeout, so the CLI can read (or write desired state into) the file while `serve` runs.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, StoreError};
use crate::shadow::{Document, Shadow};
use crate::store::{Counter, DeviceInfo, HistoryQuery, Store, StoreStats, StoredEvent, Watermark};
use crate::wire::{Reason, Telemetry};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    received INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    last_boot INTEGER
);
CREATE TABLE IF NOT EXISTS shadows (
    device TEXT PRIMARY KEY,
    reported TEXT NOT NULL,
    desired TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS telemetry (
    device TEXT NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    t INTEGER NOT NULL,
    "first" INTEGER NOT NULL,
    n INTEGER NOT NULL,
    "min" INTEGER NOT NULL,
    "max" INTEGER NOT NULL,
    mean INTEGER NOT NULL,
    PRIMARY KEY (device, boot, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    t INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (device, boot, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dropped (
    device TEXT NOT NULL,
    boot INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (device, boot, first_seq, last_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (
    device TEXT NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (device, boot)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
PRAGMA user_version = 1;
"#;

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.conn.path()).finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) a database file.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_err = |source| Error::OpenDatabase { path: path.to_owned(), source };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        // WAL: readers (the CLI) do not block the writer; NORMAL: no fsync per commit.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(SqliteStore { conn })
    }

    /// A fresh database in memory (gone when the store is dropped).
    pub fn in_memory() -> Result<Self, Error> {
        let open_err = |source| Error::OpenDatabase { path: ":memory:".into(), source };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        Ok(SqliteStore { conn })
    }

    /// Opens `path`, or an in-memory database for the name `:memory:`.
    pub fn open_or_memory(path: &Path) -> Result<Self, Error> {
        if path == Path::new(":memory:") {
            Self::in_memory()
        } else {
            Self::open(path)
        }
    }
}

#[cfg(test)]
impl SqliteStore {
    /// Runs raw SQL (tests simulate storage failures with it).
    pub(crate) fn raw_sql(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.execute_batch(sql)
    }
}

fn parse_doc(text: &str, what: &'static str, device: &str) -> Result<Document, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        what,
        device: device.to_owned(),
        source,
    })
}

fn doc_text(doc: &Document) -> String {
    // A map of JSON values always serialises.
    serde_json::to_string(doc).unwrap_or_else(|_| "{}".to_owned())
}

/// SQLite integers are i64; our values are u32/u64 that fit.
fn u32_col(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn u64_col(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store for SqliteStore {
    fn begin(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    fn ensure_device(&mut self, device: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO devices (id) VALUES (?1)")?
            .execute(params![device])?;
        Ok(())
    }

    fn device_seen(&mut self, device: &str, boot: u32, duplicate: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO devices (id, received, duplicates, last_boot) VALUES (?1, 1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET
                    received = received + 1,
                    duplicates = duplicates + excluded.duplicates,
                    last_boot = max(coalesce(last_boot, excluded.last_boot), excluded.last_boot)",
            )?
            .execute(params![device, i64::from(duplicate), boot])?;
        Ok(())
    }

    fn record_exists(&mut self, device: &str, boot: u32, seq: u32) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM telemetry WHERE device = ?1 AND boot = ?2 AND seq = ?3
                 UNION ALL
                 SELECT 1 FROM events WHERE device = ?1 AND boot = ?2 AND seq = ?3
                 LIMIT 1",
            )?
            .query_row(params![device, boot, seq], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    fn insert_telemetry(&mut self, device: &str, rec: &Telemetry) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                r#"INSERT OR IGNORE INTO telemetry
                   (device, boot, seq, t, "first", n, "min", "max", mean)
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"#,
            )?
            .execute(params![
                device, rec.boot, rec.seq, rec.t, rec.first, rec.n, rec.min, rec.max, rec.mean
            ])?;
        Ok(n == 1)
    }

    fn insert_event(&mut self, device: &str, event: &StoredEvent) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO events (device, boot, seq, t, kind, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![device, event.boot, event.seq, event.t, event.kind, doc_text(&event.body)])?;
        Ok(n == 1)
    }

    fn insert_dropped(&mut self, device: &str, boot: u32, from: u32, to: u32) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO dropped (device, boot, first_seq, last_seq)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![device, boot, from, to])?;
        Ok(())
    }

    fn coverage_end(&mut self, device: &str, boot: u32, seq: u32) -> Result<Option<u32>, StoreError> {
        let range_end: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT max(last_seq) FROM dropped
                 WHERE device = ?1 AND boot = ?2 AND first_seq <= ?3 AND last_seq >= ?3",
            )?
            .query_row(params![device, boot, seq], |r| r.get(0))?;
        let range_end = range_end.map(u32_col);
        if range_end.is_some_and(|end| end >= seq) {
            return Ok(range_end);
        }
        Ok(self.record_exists(device, boot, seq)?.then_some(seq))
    }

    fn watermark(&mut self, device: &str, boot: u32) -> Result<u32, StoreError> {
        let w: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM watermarks WHERE device = ?1 AND boot = ?2")?
            .query_row(params![device, boot], |r| r.get(0))
            .optional()?;
        Ok(w.map(u32_col).unwrap_or(0))
    }

    fn set_watermark(&mut self, device: &str, boot: u32, seq: u32) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO watermarks (device, boot, seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (device, boot) DO UPDATE SET seq = excluded.seq",
            )?
            .execute(params![device, boot, seq])?;
        Ok(())
    }

    fn watermarks(&mut self, device: &str) -> Result<Vec<Watermark>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT boot, seq FROM watermarks WHERE device = ?1 ORDER BY boot")?;
        let rows = stmt.query_map(params![device], |r| {
            Ok(Watermark { boot: u32_col(r.get(0)?), seq: u32_col(r.get(1)?) })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn shadow(&mut self, device: &str) -> Result<Option<Shadow>, StoreError> {
        let row: Option<(String, String, i64)> = self
            .conn
            .prepare_cached("SELECT reported, desired, version FROM shadows WHERE device = ?1")?
            .query_row(params![device], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((reported, desired, version)) = row else {
            return Ok(None);
        };
        Ok(Some(Shadow {
            reported: parse_doc(&reported, "reported document", device)?,
            desired: parse_doc(&desired, "desired document", device)?,
            version: u64_col(version),
        }))
    }

    fn put_shadow(&mut self, device: &str, shadow: &Shadow) -> Result<(), StoreError> {
        let version = i64::try_from(shadow.version).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "INSERT INTO shadows (device, reported, desired, version) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (device) DO UPDATE SET
                    reported = excluded.reported, desired = excluded.desired,
                    version = excluded.version",
            )?
            .execute(params![device, doc_text(&shadow.reported), doc_text(&shadow.desired), version])?;
        Ok(())
    }

    fn count_rejection(&mut self, reason: Reason) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO rejections (reason, count) VALUES (?1, 1)
                 ON CONFLICT (reason) DO UPDATE SET count = count + 1",
            )?
            .execute(params![reason.as_str()])?;
        Ok(())
    }

    fn bump(&mut self, counter: Counter) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO counters (name, value) VALUES (?1, 1)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
            )?
            .execute(params![counter.name()])?;
        Ok(())
    }

    fn devices(&mut self) -> Result<Vec<DeviceInfo>, StoreError> {
        let mut devices = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT d.id, d.received, d.duplicates, d.last_boot, coalesce(s.version, 0)
                 FROM devices d LEFT JOIN shadows s ON s.device = d.id ORDER BY d.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DeviceInfo {
                    id: r.get(0)?,
                    received: u64_col(r.get(1)?),
                    duplicates: u64_col(r.get(2)?),
                    last_boot: r.get::<_, Option<i64>>(3)?.map(u32_col),
                    version: u64_col(r.get(4)?),
                    watermarks: Vec::new(),
                })
            })?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        for d in &mut devices {
            d.watermarks = self.watermarks(&d.id)?;
        }
        Ok(devices)
    }

    fn device_exists(&mut self, device: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn
            .prepare_cached("SELECT 1 FROM devices WHERE id = ?1")?
            .query_row(params![device], |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    fn telemetry(&mut self, device: &str, q: &HistoryQuery) -> Result<Vec<Telemetry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            r#"SELECT boot, seq, t, "first", n, "min", "max", mean FROM telemetry
               WHERE device = ?1 AND (?2 IS NULL OR boot = ?2) AND (?3 IS NULL OR seq > ?3)
               ORDER BY boot, seq LIMIT ?4"#,
        )?;
        let rows = stmt.query_map(params![device, q.boot, q.since, q.limit], |r| {
            Ok(Telemetry {
                boot: u32_col(r.get(0)?),
                seq: u32_col(r.get(1)?),
                t: u32_col(r.get(2)?),
                first: u32_col(r.get(3)?),
                n: u32_col(r.get(4)?),
                min: r.get(5)?,
                max: r.get(6)?,
                mean: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn events(&mut self, device: &str, q: &HistoryQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let raw: Vec<(i64, i64, i64, String, String)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT boot, seq, t, kind, body FROM events
                 WHERE device = ?1 AND (?2 IS NULL OR boot = ?2) AND (?3 IS NULL OR seq > ?3)
                 ORDER BY boot, seq LIMIT ?4",
            )?;
            let rows = stmt.query_map(params![device, q.boot, q.since, q.limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        raw.into_iter()
            .map(|(boot, seq, t, kind, body)| {
                Ok(StoredEvent {
                    boot: u32_col(boot),
                    seq: u32_col(seq),
                    t: u32_col(t),
                    kind,
                    body: parse_doc(&body, "event body", device)?,
                })
            })
            .collect()
    }

    fn stats(&mut self) -> Result<StoreStats, StoreError> {
        let mut stats = StoreStats::default();
        for reason in Reason::ALL {
            stats.rejected.insert(reason.as_str(), 0);
        }
        for counter in Counter::ALL {
            stats.counters.insert(counter.name(), 0);
        }
        {
            let mut stmt = self.conn.prepare_cached("SELECT reason, count FROM rejections")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (name, count) = row?;
                if let Some(reason) = Reason::ALL.iter().find(|r| r.as_str() == name) {
                    stats.rejected.insert(reason.as_str(), u64_col(count));
                }
            }
        }
        {
            let mut stmt = self.conn.prepare_cached("SELECT name, value FROM counters")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (name, value) = row?;
                if let Some(counter) = Counter::ALL.iter().find(|c| c.name() == name) {
                    stats.counters.insert(counter.name(), u64_col(value));
                }
            }
        }
        stats.rejected_total = stats.rejected.values().sum();
        let devices: i64 =
            self.conn.prepare_cached("SELECT count(*) FROM devices")?.query_row([], |r| r.get(0))?;
        stats.devices = u64_col(devices);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HistoryQuery;

    fn tel(boot: u32, seq: u32) -> Telemetry {
        Telemetry { boot, seq, t: seq * 10, first: seq, n: 1, min: -5, max: 5, mean: 0 }
    }

    #[test]
    fn keys_are_shared_by_telemetry_and_events() {
        let mut s = SqliteStore::in_memory().unwrap();
        assert!(s.insert_telemetry("d", &tel(1, 1)).unwrap());
        assert!(!s.insert_telemetry("d", &tel(1, 1)).unwrap());
        assert!(s.record_exists("d", 1, 1).unwrap());
        assert!(!s.record_exists("d", 2, 1).unwrap());
        let ev = StoredEvent { boot: 1, seq: 2, t: 0, kind: "confirm".into(), body: Document::new() };
        assert!(s.insert_event("d", &ev).unwrap());
        assert!(s.record_exists("d", 1, 2).unwrap());
        assert_eq!(s.telemetry("d", &HistoryQuery::default()).unwrap(), vec![tel(1, 1)]);
        assert_eq!(s.events("d", &HistoryQuery::default()).unwrap(), vec![ev]);
    }

    #[test]
    fn coverage_from_records_and_ranges() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.insert_telemetry("d", &tel(1, 3)).unwrap();
        s.insert_dropped("d", 1, 4, 6).unwrap();
        s.insert_dropped("d", 1, 5, 9).unwrap();
        assert_eq!(s.coverage_end("d", 1, 2).unwrap(), None);
        assert_eq!(s.coverage_end("d", 1, 3).unwrap(), Some(3));
        assert_eq!(s.coverage_end("d", 1, 4).unwrap(), Some(6));
        assert_eq!(s.coverage_end("d", 1, 5).unwrap(), Some(9));
        assert_eq!(s.coverage_end("d", 1, 10).unwrap(), None);
        assert_eq!(s.coverage_end("d", 2, 5).unwrap(), None);
    }

    #[test]
    fn history_filters() {
        let mut s = SqliteStore::in_memory().unwrap();
        for (b, q) in [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2)] {
            s.insert_telemetry("d", &tel(b, q)).unwrap();
        }
        let q = |boot, since, limit| HistoryQuery { boot, since, limit };
        let seqs = |v: Vec<Telemetry>| v.iter().map(|t| (t.boot, t.seq)).collect::<Vec<_>>();
        assert_eq!(seqs(s.telemetry("d", &q(Some(2), None, 10)).unwrap()), [(2, 1), (2, 2)]);
        assert_eq!(seqs(s.telemetry("d", &q(None, Some(1), 10)).unwrap()), [(1, 2), (1, 3), (2, 2)]);
        assert_eq!(seqs(s.telemetry("d", &q(Some(1), Some(1), 1)).unwrap()), [(1, 2)]);
    }

    #[test]
    fn shadows_counters_and_devices_round_trip() {
        let mut s = SqliteStore::in_memory().unwrap();
        assert_eq!(s.shadow("d").unwrap(), None);
        let mut sh = Shadow::default();
        sh.merge_reported(&serde_json::from_str(r#"{"a":{"b":[1,2]}}"#).unwrap());
        s.put_shadow("d", &sh).unwrap();
        assert_eq!(s.shadow("d").unwrap(), Some(sh));
        s.device_seen("d", 3, false).unwrap();
        s.device_seen("d", 2, true).unwrap();
        s.set_watermark("d", 3, 7).unwrap();
        let devices = s.devices().unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!((devices[0].received, devices[0].duplicates), (2, 1));
        assert_eq!(devices[0].last_boot, Some(3));
        assert_eq!(devices[0].version, 1);
        assert_eq!(devices[0].watermarks, vec![Watermark { boot: 3, seq: 7 }]);
        s.count_rejection(Reason::NotJson).unwrap();
        s.count_rejection(Reason::NotJson).unwrap();
        s.bump(Counter::Duplicate).unwrap();
        let stats = s.stats().unwrap();
        assert_eq!(stats.rejected["not_json"], 2);
        assert_eq!(stats.rejected["oversize"], 0);
        assert_eq!(stats.rejected_total, 2);
        assert_eq!(stats.counters["duplicates"], 1);
        assert_eq!(stats.devices, 1);
    }

    #[test]
    fn rollback_discards_writes() {
        let mut s = SqliteStore::in_memory().unwrap();
        s.begin().unwrap();
        s.insert_telemetry("d", &tel(1, 1)).unwrap();
        s.rollback().unwrap();
        assert!(!s.record_exists("d", 1, 1).unwrap());
    }

    #[test]
    fn file_database_persists() {
        let dir = std::env::temp_dir().join(format!("twinbed-twin-sqlite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let _ = std::fs::remove_file(&path);
        {
            let mut s = SqliteStore::open(&path).unwrap();
            s.insert_telemetry("d", &tel(1, 1)).unwrap();
        }
        let mut s = SqliteStore::open(&path).unwrap();
        assert!(s.record_exists("d", 1, 1).unwrap());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
