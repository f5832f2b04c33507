//! Day keys: one random 256-bit key per UTC day, in a file of its own (`<dir>/YYYY-MM-DD.key`, 0600, fsynced), that
//! seals the openings of that day's personal fields with ChaCha20-Poly1305. Erasing a day overwrites and removes
//! its key file; every sealed opening of that day, wherever a copy of it lies (the log's files, a backup of them),
//! can then no longer be read. A sealed opening is bound to its day and to a context (the event it belongs to):
//! moved to another event, it does not open.
//!
//! Sealed bytes: `0x01` ‖ day (i32, big-endian, days since 1970-01-01) ‖ nonce (12 random bytes) ‖ ciphertext ‖
//! tag (16). The associated data is `0x01` ‖ day ‖ context.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::NaiveDate;
use rand_core::{OsRng, RngCore};
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 4 + 12;

/// A UTC day, as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

impl Day {
    pub fn of_date(date: NaiveDate) -> Self {
        Day((date - NaiveDate::default()).num_days() as i32)
    }

    pub fn date(self) -> NaiveDate {
        NaiveDate::default() + chrono::Days::new(self.0.max(0) as u64)
    }

    fn file_name(self) -> String {
        format!("{}.key", self.date().format("%Y-%m-%d"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error("the day key {0} is damaged")]
    BadKey(String),
    #[error("a sealed opening is damaged or belongs to another event")]
    Unsealable,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VaultError {
    let what = what.into();
    move |error| VaultError::Io { what, error }
}

/// The day keys of one ledger.
pub struct Vault {
    dir: PathBuf,
    keys: Mutex<HashMap<Day, Zeroizing<[u8; 32]>>>,
}

impl Vault {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, day: Day) -> PathBuf {
        self.dir.join(day.file_name())
    }

    /// The day's key, read from its file (`None`: erased, or never made).
    fn key(&self, day: Day) -> Result<Option<Zeroizing<[u8; 32]>>, VaultError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = keys.get(&day) {
            return Ok(Some(key.clone()));
        }
        let path = self.path(day);
        let text = match fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), key.as_mut())
            .map_err(|_| VaultError::BadKey(path.display().to_string()))?;
        keys.insert(day, key.clone());
        Ok(Some(key))
    }

    /// The day's key, made (and durable) if the day has none yet.
    fn key_or_new(&self, day: Day) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        if let Some(key) = self.key(day)? {
            return Ok(key);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        fs::create_dir_all(&self.dir).map_err(io(format!("creating {}", self.dir.display())))?;
        let path = self.path(day);
        write_private(&path, hex::encode(key.as_ref()).as_bytes())?;
        sync_dir(&self.dir)?;
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(day, key.clone());
        Ok(key)
    }

    /// Seals `plain` under `day`'s key, bound to `context`.
    pub fn seal(&self, day: Day, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self.key_or_new(day)?;
        let mut sealed = Vec::with_capacity(HEADER + plain.len() + 16);
        sealed.push(VERSION);
        sealed.extend_from_slice(&day.0.to_be_bytes());
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        sealed.extend_from_slice(&nonce);
        let aad = [&sealed[..5], context].concat();
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Unsealable)?;
        sealed.extend_from_slice(&cipher);
        Ok(sealed)
    }

    /// The day a sealed opening belongs to.
    pub fn day_of(sealed: &[u8]) -> Option<Day> {
        let day: [u8; 4] = sealed.get(1..5)?.try_into().ok()?;
        (sealed.first() == Some(&VERSION)).then_some(Day(i32::from_be_bytes(day)))
    }

    /// Opens what [`Vault::seal`] sealed with the same `context`; `None` when its day was erased.
    pub fn open(
        &self,
        context: &[u8],
        sealed: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let day = Self::day_of(sealed).ok_or(VaultError::Unsealable)?;
        if sealed.len() < HEADER + 16 {
            return Err(VaultError::Unsealable);
        }
        let Some(key) = self.key(day)? else {
            return Ok(None);
        };
        let aad = [&sealed[..5], context].concat();
        ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .decrypt(
                Nonce::from_slice(&sealed[5..HEADER]),
                Payload {
                    msg: &sealed[HEADER..],
                    aad: &aad,
                },
            )
            .map(|plain| Some(Zeroizing::new(plain)))
            .map_err(|_| VaultError::Unsealable)
    }

    /// The days that have a key, oldest first.
    pub fn days(&self) -> Result<Vec<Day>, VaultError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("listing {}", self.dir.display()))(e)),
        };
        let mut days: Vec<Day> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let date =
                    NaiveDate::parse_from_str(name.strip_suffix(".key")?, "%Y-%m-%d").ok()?;
                Some(Day::of_date(date))
            })
            .collect();
        days.sort();
        Ok(days)
    }

    /// Erases every day before `before`: each key file is overwritten with zeros, synced and removed. Returns the
    /// days erased.
    pub fn erase_before(&self, before: Day) -> Result<Vec<Day>, VaultError> {
        let erased: Vec<Day> = self
            .days()?
            .into_iter()
            .filter(|day| *day < before)
            .collect();
        for day in &erased {
            let path = self.path(*day);
            let length = fs::metadata(&path).map(|m| m.len()).unwrap_or(64) as usize;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(format!("opening {}", path.display())))?;
            file.write_all(&vec![0u8; length])
                .and_then(|()| file.sync_all())
                .map_err(io(format!("overwriting {}", path.display())))?;
            fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
            self.keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(day);
        }
        if !erased.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(erased)
    }
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), VaultError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let what = || format!("writing {}", path.display());
    let mut file = options.open(path).map_err(io(what()))?;
    file.write_all(contents).map_err(io(what()))?;
    file.sync_all().map_err(io(what()))
}

fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> Day {
        Day::of_date(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn a_sealed_opening_opens_in_its_context_until_its_day_is_erased() {
        let tmp = tempfile::tempdir().unwrap();
        let vault = Vault::new(tmp.path().join("personal"));
        let (monday, tuesday) = (day("2026-12-07"), day("2026-12-08"));
        assert_eq!(monday.date().to_string(), "2026-12-07");
        let old = vault.seal(monday, b"seq 7", b"203.0.113.7").unwrap();
        let new = vault.seal(tuesday, b"seq 9", b"198.51.100.2").unwrap();
        assert_eq!(Vault::day_of(&old), Some(monday));
        assert_eq!(
            vault.open(b"seq 7", &old).unwrap().unwrap().as_slice(),
            b"203.0.113.7"
        );
        // Bound to its event: moved to another, it does not open; nor does a flipped byte.
        assert!(matches!(
            vault.open(b"seq 8", &old),
            Err(VaultError::Unsealable)
        ));
        let mut flipped = old.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            vault.open(b"seq 7", &flipped),
            Err(VaultError::Unsealable)
        ));
        // The plaintext is nowhere in the sealed bytes.
        assert!(!old.windows(11).any(|w| w == b"203.0.113.7"));

        assert_eq!(vault.erase_before(tuesday).unwrap(), vec![monday]);
        assert_eq!(vault.open(b"seq 7", &old).unwrap(), None, "erased");
        // A vault reopened from the directory agrees, and the other day is untouched.
        let reopened = Vault::new(tmp.path().join("personal"));
        assert_eq!(reopened.open(b"seq 7", &old).unwrap(), None);
        assert_eq!(
            reopened.open(b"seq 9", &new).unwrap().unwrap().as_slice(),
            b"198.51.100.2"
        );
        assert_eq!(reopened.days().unwrap(), vec![tuesday]);
    }

    #[test]
    fn day_keys_are_private_files() {
        let tmp = tempfile::tempdir().unwrap();
        let vault = Vault::new(tmp.path());
        vault.seal(day("2026-01-02"), b"", b"x").unwrap();
        let path = tmp.path().join("2026-01-02.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(fs::read_to_string(&path).unwrap().len(), 64);
    }
}
