//! withAwsRole core: short-lived AWS credentials from Vault's AWS secrets engine
//! (`POST <mount>/sts/<role>`), with request validation, a single-flight expiring cache,
//! retries and user-facing errors. No JNI here: `rust/jni` only converts and maps.
//!
//! ```no_run
//! use withawsrole_core::CredentialBroker;
//! let broker = CredentialBroker::from_process_env()?;
//! let issued = broker.credentials(&[("purpose".into(), "ecr-push".into())])?;
//! for (key, value) in issued.pairs() { /* hand to the caller */ let _ = (key, value); }
//! # Ok::<(), withawsrole_core::BrokerError>(())
//! ```

pub mod broker;
pub mod cache;
pub mod child_token;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod fields;
pub mod request;
pub mod retry;
pub mod secret;
pub mod session;
pub mod settings;
pub mod sources;
#[cfg(test)]
mod testing;
pub mod ttl;
pub mod vault;
mod vault_error;
mod vault_session;
pub mod waiting;

pub use broker::{
    BrokerOptions, ChildTokenWait, CredentialBroker, Credentials, IssuedCredentials, Stats,
};
pub use cache::{CacheStatus, RefreshPolicy};
pub use clock::{Clock, Jitter, ManualClock, Sleeper, SystemClock};
pub use config::{ConfigCache, PurposesConfig};
pub use error::{BrokerError, ErrorKind};
pub use request::{
    pairs_from_flat, parse_request, CredentialRequest, Governance, StsTarget, VaultLogin,
    REQUEST_KEYS,
};
pub use retry::RetryPolicy;
pub use secret::SecretString;

/// The crate version (reported by `Library_version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
