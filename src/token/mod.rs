//! An Ed25519 key held by a PKCS#11 token (an HSM, a cloud HSM's PKCS#11 library, SoftHSM2 in tests): `[signer]`
//! in keyledger.toml names the module, the token and the key; the PIN comes from `$KEYLEDGER_PKCS11_PIN` or a PIN
//! file, never from keyledger.toml. The private key is generated on the token as sensitive and non-extractable
//! and signs with CKM_EDDSA; its public key is read once and every signature the token returns is checked
//! against it, so a token that answers wrongly cannot put a bad signature on the log.

mod config;
mod objects;

pub use config::{SignerConfig, SignerKind, PIN_ENV};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ed25519_dalek::{Signature, VerifyingKey};
use objects::{find_key, find_token, generate};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

/// Why the token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("[signer] {0}")]
    Config(String),
    #[error("the PKCS#11 token refused the PIN from {0} (wrong PIN, or the PIN is locked)")]
    Pin(String),
    #[error("PKCS#11 {what}: {error}")]
    Pkcs11 { what: String, error: String },
    #[error("the token's signature does not verify with its public key")]
    BadSignature,
}

fn pkcs11(what: &str) -> impl FnOnce(Pkcs11Error) -> TokenError + '_ {
    move |error| TokenError::Pkcs11 {
        what: what.to_string(),
        error: error.to_string(),
    }
}

/// A signing key on a PKCS#11 token, with a pool of logged-in sessions (one per signing thread at most). A token
/// that went away can be reopened ([`TokenKey::reopen`]) once it is back, and only if it still holds this key.
pub struct TokenKey {
    config: SignerConfig,
    public: VerifyingKey,
    open: RwLock<Arc<OpenKey>>,
}

/// The key as found on the token by one login: handles and sessions that a module reset invalidates.
struct OpenKey {
    context: Pkcs11,
    slot: Slot,
    key: ObjectHandle,
    idle: Mutex<Vec<Session>>,
    /// The first session, kept open so that the login lasts (PKCS#11 logs out when every session closes).
    login: Mutex<Option<Session>>,
}

impl OpenKey {
    fn open(config: &SignerConfig, create: bool) -> Result<(Self, VerifyingKey), TokenError> {
        let module = config
            .module
            .as_ref()
            .ok_or_else(|| TokenError::Config("module is required".into()))?;
        let token_label = config.field(&config.token_label, "token_label")?;
        let key_label = config.field(&config.key_label, "key_label")?;
        let (pin, pin_from) = config.pin()?;
        let context = loaded(module)?;
        let slot = find_token(&context, token_label)?;
        let login = context
            .open_rw_session(slot)
            .map_err(pkcs11("opening a session"))?;
        match login.login(UserType::User, Some(&AuthPin::new(pin.to_string().into()))) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(Pkcs11Error::Pkcs11(
                RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinInvalid
                | RvError::PinLenRange,
                _,
            )) => return Err(TokenError::Pin(pin_from)),
            Err(e) => return Err(pkcs11("C_Login")(e)),
        }
        let (key, public) = match find_key(&login, key_label)? {
            Some(found) => found,
            None if create => generate(&login, key_label)?,
            None => {
                return Err(TokenError::Config(format!(
                    "the token {token_label:?} holds no Ed25519 key labelled {key_label:?}"
                )))
            }
        };
        let open = Self {
            context,
            slot,
            key,
            idle: Mutex::new(Vec::new()),
            login: Mutex::new(Some(login)),
        };
        Ok((open, public))
    }

    fn session(&self) -> Result<Session, TokenError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(session) => Ok(session),
            None => self
                .context
                .open_ro_session(self.slot)
                .map_err(pkcs11("opening a session")),
        }
    }

    /// Closes every session (before a module reset, after which closing them would only log errors).
    fn close(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.login.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({})", hex::encode(self.public.as_bytes()))
    }
}

impl TokenKey {
    /// Opens the key `config` names; with `create`, generates it on the token when the token has none by that label.
    pub fn open(config: &SignerConfig, create: bool) -> Result<Self, TokenError> {
        let (open, public) = OpenKey::open(config, create)?;
        Ok(Self {
            config: config.clone(),
            public,
            open: RwLock::new(Arc::new(open)),
        })
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.public
    }

    fn current(&self) -> Arc<OpenKey> {
        self.open.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Signs `message` on the token (CKM_EDDSA) and checks the signature against the public key.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], TokenError> {
        let open = self.current();
        let session = open.session()?;
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        // A session whose signing failed is dropped rather than pooled: it may be left mid-operation.
        let bytes = session
            .sign(&mechanism, open.key, message)
            .map_err(pkcs11("C_Sign"))?;
        let signature = Signature::from_slice(&bytes).map_err(|_| TokenError::BadSignature)?;
        self.public
            .verify_strict(message, &signature)
            .map_err(|_| TokenError::BadSignature)?;
        open.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        Ok(signature.to_bytes())
    }

    /// Starts over with the token after it failed: resets the module (C_Finalize, C_Initialize: some modules,
    /// SoftHSM2 among them, see a token that came back only then), logs in again and finds the key by its
    /// label. Refuses a token whose key by that label is not this key: nothing else may sign for the ledger.
    /// The reset ends every session the process holds on the module; other keys on it reopen the same way.
    pub fn reopen(&self) -> Result<(), TokenError> {
        let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
        open.close();
        reset(&open.context)?;
        let (fresh, public) = OpenKey::open(&self.config, false)?;
        if public != self.public {
            fresh.close();
            return Err(TokenError::Config(format!(
                "the token's key labelled {:?} is now {}, not the ledger's key {}; refusing to sign with it",
                self.config.key_label.as_deref().unwrap_or_default(),
                hex::encode(public.as_bytes()),
                hex::encode(self.public.as_bytes())
            )));
        }
        *open = Arc::new(fresh);
        Ok(())
    }

    /// Whether the private key's value can be read through PKCS#11 (it must not: sensitive, non-extractable).
    pub fn private_value_readable(&self) -> Result<bool, TokenError> {
        let open = self.current();
        let session = open.session()?;
        // cryptoki leaves out attributes the token will not reveal rather than failing.
        let values = session
            .get_attributes(open.key, &[AttributeType::Value])
            .map_err(pkcs11("C_GetAttributeValue"))?;
        Ok(values
            .iter()
            .any(|a| matches!(a, Attribute::Value(v) if !v.is_empty())))
    }
}

/// The module at `path`, loaded and initialised once per process and kept: C_Finalize (which dropping the last
/// handle calls) would end every session of every key the process holds on it.
fn loaded(path: &std::path::Path) -> Result<Pkcs11, TokenError> {
    static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());
    let mut modules = MODULES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, context)) = modules.iter().find(|(loaded, _)| loaded == path) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(path)
        .map_err(|e| TokenError::Config(format!("module {}: {e}", path.display())))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(pkcs11("C_Initialize")(e)),
    }
    modules.push((path.to_path_buf(), context.clone()));
    Ok(context)
}

/// C_Finalize then C_Initialize on the module `context` belongs to (the registry keeps the same context).
fn reset(context: &Pkcs11) -> Result<(), TokenError> {
    match context.clone().finalize() {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
        Err(e) => return Err(pkcs11("C_Finalize")(e)),
    }
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(pkcs11("C_Initialize")(e)),
    }
}
