//! What a failed Matrix request means, decided in one place for every
//! caller: answers and `!leave` notices (`send`), chart uploads
//! ([`super::image`]) and notifications (`deliver`).
//!
//! Failure this prevents: the reply path and the deliverer each reading
//! the homeserver's answer their own way, so the same refusal was retried
//! by one and given up by the other. The rule: a 4xx refusal will not
//! change on retry (event too large, not in the room, forbidden), except a
//! rate limit; everything else — no answer at all, a homeserver error —
//! may pass later, within the caller's retry schedule ([`crate::retry`]).

use std::time::Duration;

use matrix_sdk::ruma::api::error::{ErrorKind, RetryAfter};

/// The wait a rate limit (`M_LIMIT_EXCEEDED`, 429) that outlived the SDK's
/// own waiting asks for when it names no delay of its own.
pub const RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);

/// How a failed request should be treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The network or the homeserver (5xx, no answer): worth another try.
    Transient,
    /// Rate limited: try again after this long.
    RetryAfter(Duration),
    /// `M_FORBIDDEN`: the bot may not post there. Whether it is still a
    /// member (muted) or not (kicked, left) is the caller's question.
    Forbidden,
    /// Any other refusal (4xx): retrying cannot help.
    Rejected,
}

impl Failure {
    /// Whether another try may succeed.
    pub fn retryable(self) -> bool {
        matches!(self, Failure::Transient | Failure::RetryAfter(_))
    }
}

/// Classifies a matrix-sdk error.
pub fn classify(e: &matrix_sdk::Error) -> Failure {
    let status = e.as_client_api_error().map(|a| a.status_code.as_u16());
    of(status, e.client_api_error_kind())
}

/// The decision on the parts of a homeserver's answer: its HTTP status
/// (`None`: no answer in the client API's error format — network trouble)
/// and its `errcode`.
fn of(status: Option<u16>, kind: Option<&ErrorKind>) -> Failure {
    match (status, kind) {
        (_, Some(ErrorKind::Forbidden)) => Failure::Forbidden,
        (_, Some(ErrorKind::LimitExceeded(l))) => Failure::RetryAfter(
            l.retry_after
                .as_ref()
                .and_then(|r| match r {
                    RetryAfter::Delay(d) => Some(*d),
                    _ => None,
                })
                .unwrap_or(RATE_LIMIT_WAIT),
        ),
        (Some(429), _) => Failure::RetryAfter(RATE_LIMIT_WAIT),
        (Some(s), _) if (400..500).contains(&s) => Failure::Rejected,
        _ => Failure::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_sdk::ruma::api::error::LimitExceededErrorData;

    fn limited(after: Option<RetryAfter>) -> ErrorKind {
        let mut data = LimitExceededErrorData::new();
        data.retry_after = after;
        ErrorKind::LimitExceeded(data)
    }

    #[test]
    fn refusals_are_final_and_the_rest_is_retried() {
        assert_eq!(of(None, None), Failure::Transient, "no answer");
        assert_eq!(of(Some(502), None), Failure::Transient);
        assert_eq!(of(Some(500), Some(&ErrorKind::Unknown)), Failure::Transient);
        assert_eq!(
            of(Some(403), Some(&ErrorKind::Forbidden)),
            Failure::Forbidden
        );
        assert_eq!(of(Some(413), Some(&ErrorKind::TooLarge)), Failure::Rejected);
        assert_eq!(of(Some(404), None), Failure::Rejected);
        assert!(!of(Some(400), None).retryable());
        assert!(!Failure::Forbidden.retryable());
        assert!(Failure::Transient.retryable());
    }

    #[test]
    fn a_rate_limit_waits_what_it_asks_or_five_seconds() {
        let d = Duration::from_millis(1500);
        assert_eq!(
            of(Some(429), Some(&limited(Some(RetryAfter::Delay(d))))),
            Failure::RetryAfter(d)
        );
        assert_eq!(
            of(Some(429), Some(&limited(None))),
            Failure::RetryAfter(RATE_LIMIT_WAIT)
        );
        let at = std::time::SystemTime::now();
        assert_eq!(
            of(Some(429), Some(&limited(Some(RetryAfter::DateTime(at))))),
            Failure::RetryAfter(RATE_LIMIT_WAIT)
        );
        assert_eq!(of(Some(429), None), Failure::RetryAfter(RATE_LIMIT_WAIT));
        assert!(Failure::RetryAfter(d).retryable());
    }
}
