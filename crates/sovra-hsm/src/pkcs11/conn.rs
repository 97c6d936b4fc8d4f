//! The connection to a PKCS#11 token: the loaded module, the logged-in slot, and a pool of idle
//! sessions. A connection that meets an error meaning the token or the module is gone is marked
//! broken; the HSM then builds a new one (see [`super::Pkcs11Hsm`]), and keys loaded through
//! the old one report that they must be reloaded.

use crate::HsmError;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Idle sessions kept for reuse; the server bounds how many calls run at once.
const MAX_IDLE: usize = 64;

/// Why a call on a session failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The token, session or module is gone; the connection is rebuilt.
    Lost(String),
    /// The operation failed.
    Op(CkError),
}

impl Failure {
    /// As an [`HsmError`]: lost → unavailable; an operation's error → a device error saying
    /// what was being done.
    pub(crate) fn hsm(what: &str) -> impl Fn(Failure) -> HsmError + '_ {
        move |f| match f {
            Failure::Lost(m) => HsmError::Unavailable(m),
            Failure::Op(e) => HsmError::Device(format!("{what}: {e}")),
        }
    }
}

/// A loaded module with one logged-in token.
pub(crate) struct Conn {
    // Sessions close before the module is finalised (fields drop in order).
    idle: Mutex<Vec<Session>>,
    slot: Slot,
    broken: AtomicBool,
    ctx: Pkcs11,
}

/// Whether `e` means the token, the session or the module is gone, so the connection must be
/// rebuilt, rather than that this one operation failed.
pub(crate) fn is_connection_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
                | RvError::SlotIdInvalid,
            _
        ) | CkError::LibraryLoading(_)
            | CkError::NullFunctionPointer
    )
}

fn unavailable(what: &str) -> impl Fn(CkError) -> HsmError + '_ {
    move |e| HsmError::Unavailable(format!("{what}: {e}"))
}

impl Conn {
    /// Loads `module`, finds the token labelled `token_label` and logs in as its user.
    pub(crate) fn open(module: &Path, token_label: &str, pin: &str) -> Result<Self, HsmError> {
        let ctx = Pkcs11::new(module).map_err(|e| {
            HsmError::Device(format!(
                "cannot load the PKCS#11 module {}: {e}",
                module.display()
            ))
        })?;
        ctx.initialize(CInitializeArgs::OsThreads)
            .map_err(unavailable("initialising the PKCS#11 module"))?;
        let mut found = None;
        for slot in ctx
            .get_slots_with_token()
            .map_err(unavailable("listing the PKCS#11 slots"))?
        {
            let info = ctx
                .get_token_info(slot)
                .map_err(unavailable("reading a token's information"))?;
            if info.label().trim_end() == token_label {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| {
            HsmError::Unavailable(format!(
                "no PKCS#11 token is labelled {token_label:?} (hsm.pkcs11_token_label)"
            ))
        })?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(unavailable("opening a PKCS#11 session"))?;
        match session.login(UserType::User, Some(&AuthPin::new(pin.to_owned()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                return Err(HsmError::Device(format!(
                    "cannot log in to token {token_label:?} (check hsm.pkcs11_pin_file): {e}"
                )));
            }
        }
        Ok(Self {
            idle: Mutex::new(vec![session]),
            slot,
            broken: AtomicBool::new(false),
            ctx,
        })
    }

    /// Whether an operation found the token gone.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// Runs `f` on a session of this connection. An error meaning the token is gone marks the
    /// connection broken and becomes [`Failure::Lost`].
    pub(crate) fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<T, Failure> {
        if self.is_broken() {
            return Err(Failure::Lost(
                "the connection to the HSM was lost; reconnecting".into(),
            ));
        }
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let session = match pooled {
            Some(s) => s,
            None => self.ctx.open_rw_session(self.slot).map_err(|e| {
                if is_connection_lost(&e) {
                    self.broken.store(true, Ordering::Release);
                }
                Failure::Lost(format!("opening a PKCS#11 session: {e}"))
            })?,
        };
        match f(&session) {
            Ok(v) => {
                self.give_back(session);
                Ok(v)
            }
            Err(e) if is_connection_lost(&e) => {
                self.broken.store(true, Ordering::Release);
                Err(Failure::Lost(format!("the HSM connection failed: {e}")))
            }
            Err(e) => {
                self.give_back(session);
                Err(Failure::Op(e))
            }
        }
    }

    fn give_back(&self, s: Session) {
        if let Ok(mut v) = self.idle.lock()
            && v.len() < MAX_IDLE
        {
            v.push(s);
        }
    }
}
