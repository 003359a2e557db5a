//! The child-token half of the facade (docs/refresh.md): create one, blocking or in slices
//! (crate::waiting), give one up, and revoke one. The calls themselves are `crate::child_token`'s.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{CredentialBroker, Inner};
use crate::child_token::{
    create, parse_child_token_request, parse_revoke_request, revoke, ChildToken, ChildTokenRequest,
    Revocation,
};
use crate::error::BrokerError;
use crate::request::{VaultAuth, VaultLogin};
use crate::waiting::{Forget, Pending, PendingCalls};

/// Child tokens being created for callers that wait in slices.
pub(crate) type PendingChildren = PendingCalls<Ticket, Arc<ChildToken>>;

/// A child token under way belongs to the caller that started it: the ticket it was given and
/// a digest of its request (which names the build), so no other request can take it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Ticket {
    id: String,
    owner: [u8; 32],
}

/// What [`CredentialBroker::create_child_token_within`] found.
#[derive(Debug)]
pub enum ChildTokenWait {
    Created(Arc<ChildToken>),
    /// Not yet: ask again with this ticket (and the same request), or give it up.
    Pending {
        ticket: String,
    },
}

/// A child token whose owner neither took nor gave it up this long after its deadline is
/// revoked (its owner is gone: a JVM thread killed mid-block).
const UNCLAIMED_GRACE: Duration = Duration::from_secs(120);

impl CredentialBroker {
    /// Creates a child token for one purpose (pairs: the request keys and
    /// [`CHILD_TOKEN_KEYS`](crate::child_token::CHILD_TOKEN_KEYS)), logging in as a credential
    /// request would. Blocks until answered.
    pub fn create_child_token(
        &self,
        pairs: &[(String, String)],
    ) -> Result<ChildToken, BrokerError> {
        let child = self.parse_child(pairs)?;
        let (inner, now) = (&self.inner, self.inner.options.clock.now());
        self.runtime
            .block_on(create(&inner.session, &child, inner.deadline(), now))
    }

    /// As [`create_child_token`](Self::create_child_token), waiting at most `wait`: without a
    /// `ticket` it starts the creation, with one it asks again for the one it started (the same
    /// `pairs`). While Vault has not answered it returns [`ChildTokenWait::Pending`]; a caller
    /// that stops asking calls [`abandon_child_token`](Self::abandon_child_token).
    pub fn create_child_token_within(
        &self,
        pairs: &[(String, String)],
        ticket: Option<&str>,
        wait: Duration,
    ) -> Result<ChildTokenWait, BrokerError> {
        let (ticket, mut pending) = match ticket {
            None => self.start_child_token(pairs)?,
            Some(id) => {
                let ticket = Ticket {
                    id: id.to_owned(),
                    owner: owner_of(pairs),
                };
                let pending = self.inner.children.get(&ticket).ok_or_else(|| {
                    BrokerError::Internal(
                        "no child token is being created for this ticket and request (taken, \
                         given up, or never started)"
                            .into(),
                    )
                })?;
                (ticket, pending)
            }
        };
        let sleeper = self.inner.options.sleeper.clone();
        let answer = self
            .runtime
            .block_on(async move { pending.within(&*sleeper, wait).await });
        let created = match answer {
            Ok(None) => return Ok(ChildTokenWait::Pending { ticket: ticket.id }),
            Ok(Some(token)) => Ok(ChildTokenWait::Created(token)),
            Err(e) => Err(e),
        };
        self.inner.children.remove(&ticket);
        created
    }

    /// The caller that started a child token (`ticket`, the same `pairs`) stopped waiting: the
    /// token is revoked as soon as Vault has created it. Never fails; an unknown ticket is
    /// nothing to do.
    pub fn abandon_child_token(&self, pairs: &[(String, String)], ticket: &str) {
        let ticket = Ticket {
            id: ticket.to_owned(),
            owner: owner_of(pairs),
        };
        if let Some(pending) = self.inner.children.remove(&ticket) {
            self.revoke_when_created(pending);
        }
    }

    /// Revokes a child token with itself (`auth/token/revoke-self`) at the controller's Vault.
    /// Pairs: `token` (others of the creating request are accepted and ignored, so that request
    /// can be passed again; the Vault endpoint keys are refused). A token Vault no longer knows
    /// is [`Revocation::AlreadyGone`], not an error.
    pub fn revoke_child_token(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Revocation, BrokerError> {
        let login = parse_revoke_request(pairs, &|var: &str| self.setting(var))?;
        let inner = &self.inner;
        self.runtime
            .block_on(revoke(&inner.session, &login, inner.deadline()))
    }

    fn parse_child(&self, pairs: &[(String, String)]) -> Result<ChildTokenRequest, BrokerError> {
        self.parse_as(pairs, parse_child_token_request)
    }

    /// Parses `pairs` (a bad request fails here, at once) and starts creating the token.
    fn start_child_token(
        &self,
        pairs: &[(String, String)],
    ) -> Result<(Ticket, Pending<Arc<ChildToken>>), BrokerError> {
        self.revoke_unclaimed_child_tokens();
        let child = self.parse_child(pairs)?;
        let ticket = Ticket {
            id: self.new_ticket_id(),
            owner: owner_of(pairs),
        };
        let (inner, now) = (self.inner.clone(), self.inner.options.clock.now());
        let pending = self.inner.children.join_or_start(
            ticket.clone(),
            now,
            self.runtime.handle(),
            Forget::WhenTaken,
            move || async move {
                let budget = inner.deadline();
                create(&inner.session, &child, budget, now)
                    .await
                    .map(Arc::new)
            },
        );
        Ok((ticket, pending))
    }

    /// Gives up the child tokens whose owners are gone (see [`UNCLAIMED_GRACE`]).
    fn revoke_unclaimed_child_tokens(&self) {
        let now = self.inner.options.clock.now();
        let too_old = self.inner.deadline() + UNCLAIMED_GRACE;
        let stale = self
            .inner
            .children
            .remove_where(|_, p| p.is_done() && p.started + too_old < now);
        for pending in stale {
            self.revoke_when_created(pending);
        }
    }

    /// Waits (detached) for `pending` and revokes the token it made, if it made one.
    fn revoke_when_created(&self, mut pending: Pending<Arc<ChildToken>>) {
        let inner: Arc<Inner> = self.inner.clone();
        self.runtime.spawn(async move {
            let Ok(child) = pending.answer().await else {
                return;
            };
            let own = VaultLogin {
                endpoint: child.request.login.endpoint.clone(),
                auth: VaultAuth::Token(child.token.clone()),
            };
            match revoke(&inner.session, &own, inner.deadline()).await {
                Ok(_) => tracing::info!("revoked a child token its block gave up waiting for"),
                Err(e) => tracing::warn!("cannot revoke a child token no block took: {e}"),
            }
        });
    }

    fn new_ticket_id(&self) -> String {
        let jitter = &self.inner.options.jitter;
        let bits = |_| (jitter.unit() * (1u64 << 53) as f64) as u64;
        let [a, b]: [u64; 2] = [0, 1].map(bits);
        format!("{a:014x}{b:014x}")
    }
}

/// A digest of the request pairs, in any order (the secrets among them stay unreadable).
fn owner_of(pairs: &[(String, String)]) -> [u8; 32] {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    let mut digest = Sha256::new();
    for (k, v) in sorted {
        digest.update(k.as_bytes());
        digest.update([0]);
        digest.update(v.as_bytes());
        digest.update([0]);
    }
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::BrokerOptions;
    use crate::testing::pairs;

    /// A broker whose Vault never answers in time (nothing listens on port 9).
    fn broker() -> CredentialBroker {
        let env = |k: &str| match k {
            "VAULT_ADDR" => Some("http://127.0.0.1:9".to_owned()),
            "VAULT_TOKEN" => Some("t".to_owned()),
            "WITHAWSROLE_DEADLINE_SECONDS" => Some("30".to_owned()),
            _ => None,
        };
        CredentialBroker::new(BrokerOptions::with_env(Arc::new(env)).unwrap()).unwrap()
    }

    #[test]
    fn a_child_token_under_way_belongs_to_its_request_and_can_be_given_up() {
        let broker = broker();
        let mine = pairs(&[("purpose", "deploy"), ("job", "a"), ("build", "1")]);
        let theirs = pairs(&[("purpose", "deploy"), ("job", "a"), ("build", "2")]);
        let ChildTokenWait::Pending { ticket } = broker
            .create_child_token_within(&mine, None, Duration::ZERO)
            .unwrap()
        else {
            panic!("Vault cannot have answered yet");
        };
        assert_eq!(broker.inner.children.len(), 1);
        // Another request cannot take it, nor give it up.
        let e = broker
            .create_child_token_within(&theirs, Some(&ticket), Duration::ZERO)
            .unwrap_err();
        assert!(e.to_string().contains("no child token"), "{e}");
        broker.abandon_child_token(&theirs, &ticket);
        assert_eq!(broker.inner.children.len(), 1);
        // Its own request asks again (still waiting), then gives it up: nothing is left behind.
        let again = broker.create_child_token_within(&mine, Some(&ticket), Duration::ZERO);
        assert!(
            matches!(again, Ok(ChildTokenWait::Pending { .. })),
            "{again:?}"
        );
        broker.abandon_child_token(&mine, &ticket);
        assert_eq!(broker.inner.children.len(), 0);
        // A bad request fails at once, before any ticket.
        let e = broker
            .create_child_token_within(&pairs(&[("purpose", "a b")]), None, Duration::ZERO)
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidRequest);
    }
}
