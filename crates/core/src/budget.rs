//! The per-invocation subrequest budget.
//!
//! Cloudflare allows 50 subrequests per invocation (free plan). Every fetch,
//! D1 call, R2 call and queue send counts. The shells charge this ledger
//! before each call and the planners ask it what they can still afford, so an
//! invocation stops cleanly at its budget (45 by default, leaving headroom)
//! and hands the rest to a continuation.

use serde::Serialize;

/// The platform's hard limit, used as the backstop in the shells.
pub const PLATFORM_SUBREQUEST_LIMIT: u32 = 50;
/// Default planning budget: the platform limit minus headroom.
pub const DEFAULT_BUDGET: u32 = 45;

/// What a subrequest was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subrequest {
    Fetch,
    D1,
    R2,
    Queue,
    Ai,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subrequest budget exhausted: {used} of {limit} used, {wanted} more needed for {kind:?}")]
pub struct BudgetExhausted {
    pub used: u32,
    pub limit: u32,
    pub wanted: u32,
    pub kind: Subrequest,
}

/// Counts subrequests against a limit. Never lets `used` pass `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Budget {
    limit: u32,
    used: u32,
    fetch: u32,
    d1: u32,
    r2: u32,
    queue: u32,
    ai: u32,
}

impl Budget {
    /// A budget of `limit`, clamped to the platform limit.
    pub fn new(limit: u32) -> Self {
        Budget {
            limit: limit.clamp(1, PLATFORM_SUBREQUEST_LIMIT),
            used: 0,
            fetch: 0,
            d1: 0,
            r2: 0,
            queue: 0,
            ai: 0,
        }
    }

    /// Parse a configured budget (`SUBREQUEST_BUDGET`), falling back to the default.
    pub fn from_config(value: Option<&str>) -> Self {
        let limit = value
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(DEFAULT_BUDGET);
        Budget::new(limit)
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn used(&self) -> u32 {
        self.used
    }

    pub fn remaining(&self) -> u32 {
        self.limit - self.used
    }

    pub fn can_afford(&self, n: u32) -> bool {
        self.remaining() >= n
    }

    /// Charge one subrequest of `kind`, or refuse without charging.
    pub fn charge(&mut self, kind: Subrequest) -> Result<(), BudgetExhausted> {
        if self.remaining() == 0 {
            return Err(BudgetExhausted {
                used: self.used,
                limit: self.limit,
                wanted: 1,
                kind,
            });
        }
        self.used += 1;
        match kind {
            Subrequest::Fetch => self.fetch += 1,
            Subrequest::D1 => self.d1 += 1,
            Subrequest::R2 => self.r2 += 1,
            Subrequest::Queue => self.queue += 1,
            Subrequest::Ai => self.ai += 1,
        }
        Ok(())
    }

    pub fn count(&self, kind: Subrequest) -> u32 {
        match kind {
            Subrequest::Fetch => self.fetch,
            Subrequest::D1 => self.d1,
            Subrequest::R2 => self.r2,
            Subrequest::Queue => self.queue,
            Subrequest::Ai => self.ai,
        }
    }
}

/// Whether an error text is the platform's own subrequest-limit error, the
/// backstop for a miscount.
pub fn is_platform_subrequest_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too many subrequests") || m.contains("subrequest limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_its_limit_without_charging() {
        let mut b = Budget::new(2);
        assert!(b.charge(Subrequest::Fetch).is_ok());
        assert!(b.charge(Subrequest::D1).is_ok());
        let err = b.charge(Subrequest::Queue).unwrap_err();
        assert_eq!(err.used, 2);
        assert_eq!(b.used(), 2);
        assert_eq!(b.count(Subrequest::Queue), 0);
    }

    #[test]
    fn configured_budget_is_clamped_to_the_platform_limit() {
        assert_eq!(Budget::from_config(Some("45")).limit(), 45);
        assert_eq!(Budget::from_config(Some("500")).limit(), 50);
        assert_eq!(Budget::from_config(Some("nope")).limit(), DEFAULT_BUDGET);
        assert_eq!(Budget::from_config(None).limit(), DEFAULT_BUDGET);
    }

    #[test]
    fn platform_error_text_is_recognised() {
        assert!(is_platform_subrequest_error("Error: Too many subrequests."));
        assert!(!is_platform_subrequest_error("Internal error"));
    }
}
