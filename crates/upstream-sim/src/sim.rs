//! The simulator's shared state: dataset and list behind one lock, plus
//! fault plan, counters and rate-limit windows.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::Serialize;

use crate::counters::Counters;
use crate::faults::{FaultConfig, FaultConfigError, FaultPlan};
use crate::list::AwesomeList;
use crate::mutation::{Applied, MutationError, MutationOp, Upstream};
use crate::neurons::NeuronLedger;
use crate::ratelimit::RateLimits;
use crate::secondary::SecondaryLimits;
use crate::tokens::Tokens;
use crate::world::{scale_entries, RepoTruth, Specials, World};
use crate::SimConfig;

/// The mutable upstream: the world and the list it was built from.
#[derive(Clone)]
pub(crate) struct Dataset {
    pub world: World,
    pub list: AwesomeList,
    /// The list as first served, which `restore_list` returns to.
    pub initial_list: AwesomeList,
}

impl Dataset {
    pub(crate) fn build(seed: u64, scale: u32) -> Dataset {
        let mut list = AwesomeList::fixture();
        if scale > 0 {
            let techs = list.technology_names();
            for e in scale_entries(scale, &techs) {
                list.push(e);
            }
        }
        let world = World::generate(seed, &list);
        Dataset {
            world,
            initial_list: list.clone(),
            list,
        }
    }
}

pub(crate) struct Sim {
    pub config: SimConfig,
    pub base_url: String,
    data: RwLock<Dataset>,
    faults: Mutex<FaultPlan>,
    counters: Mutex<Counters>,
    limits: Mutex<RateLimits>,
    tokens: Mutex<Tokens>,
    secondary: Mutex<SecondaryLimits>,
    neurons: Mutex<NeuronLedger>,
}

/// Ground truth for tests (`GET /_sim/truth`).
#[derive(Debug, Clone, Serialize)]
pub struct Truth {
    pub seed: u64,
    pub scale: u32,
    pub clock: String,
    pub repos: Vec<RepoTruth>,
    pub special: Specials,
    /// Listed links that are not GitHub repositories.
    pub non_github_links: Vec<String>,
    pub totals: TruthTotals,
}

#[derive(Debug, Clone, Serialize)]
pub struct TruthTotals {
    pub repos: usize,
    pub issues_and_pulls: usize,
    pub open_beginner_issues: usize,
    /// Open beginner issues an open pull request will close.
    pub open_beginner_issues_with_open_pr: usize,
    /// Open beginner issues with an assignee.
    pub open_beginner_issues_assigned: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    pub(crate) fn new(config: SimConfig, base_url: String) -> Sim {
        let data = Dataset::build(config.seed, config.scale);
        Sim {
            base_url,
            data: RwLock::new(data),
            faults: Mutex::new(FaultPlan::default()),
            counters: Mutex::new(Counters::default()),
            limits: Mutex::new(RateLimits::new(config.rate_limits)),
            tokens: Mutex::new(Tokens::default()),
            secondary: Mutex::new(SecondaryLimits::new(config.secondary_limits)),
            neurons: Mutex::new(NeuronLedger::new(config.ai_quota)),
            config,
        }
    }

    pub(crate) fn data(&self) -> RwLockReadGuard<'_, Dataset> {
        self.data.read().unwrap_or_else(|e| e.into_inner())
    }

    fn data_mut(&self) -> RwLockWriteGuard<'_, Dataset> {
        self.data.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, FaultPlan> {
        lock(&self.faults)
    }

    pub(crate) fn counters(&self) -> MutexGuard<'_, Counters> {
        lock(&self.counters)
    }

    pub(crate) fn limits(&self) -> MutexGuard<'_, RateLimits> {
        lock(&self.limits)
    }

    pub(crate) fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    pub(crate) fn secondary(&self) -> MutexGuard<'_, SecondaryLimits> {
        lock(&self.secondary)
    }

    /// Workers AI's neuron ledger (one account for both AI routes).
    pub(crate) fn neurons(&self) -> MutexGuard<'_, NeuronLedger> {
        lock(&self.neurons)
    }

    /// Applies all operations or none.
    pub(crate) fn mutate(&self, ops: &[MutationOp]) -> Result<Vec<Applied>, MutationError> {
        let mut guard = self.data_mut();
        let mut draft = guard.clone();
        let mut applied = Vec::with_capacity(ops.len());
        {
            let Dataset {
                world,
                list,
                initial_list,
            } = &mut draft;
            let mut upstream = Upstream {
                world,
                list,
                initial_list,
            };
            for (i, op) in ops.iter().enumerate() {
                applied.push(upstream.apply(i, op)?);
            }
        }
        *guard = draft;
        Ok(applied)
    }

    pub(crate) fn set_faults(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        *self.faults() = FaultPlan::new(config)?;
        Ok(())
    }

    /// Restores the initial seeded state: dataset, list, faults, counters,
    /// rate-limit windows (primary and secondary, at their start-up limits)
    /// token revocations and the AI neuron ledger with its clock. Requests in
    /// flight stay counted until they end.
    pub(crate) fn reset(&self) {
        *self.data_mut() = Dataset::build(self.config.seed, self.config.scale);
        *self.faults() = FaultPlan::default();
        *self.counters() = Counters::default();
        *self.limits() = RateLimits::new(self.config.rate_limits);
        *self.tokens() = Tokens::default();
        self.secondary().reset_windows(self.config.secondary_limits);
        *self.neurons() = NeuronLedger::new(self.config.ai_quota);
    }

    pub(crate) fn truth(&self) -> Truth {
        let data = self.data();
        let listed: std::collections::HashSet<String> = data
            .list
            .entries
            .iter()
            .filter_map(|e| e.link.as_deref().and_then(crate::list::github_slug))
            .collect();
        let repos: Vec<RepoTruth> = data
            .world
            .repos
            .iter()
            .map(|r| data.world.truth_for(r, listed.contains(&r.listed_slug)))
            .collect();
        let mut special = data.world.specials.clone();
        // Mutations change who is missing, archived or renamed.
        special.missing = repos
            .iter()
            .filter(|r| r.status == "missing")
            .map(|r| r.listed_slug.clone())
            .collect();
        special
            .label_hyphen_resolved
            .retain(|slug| !special.missing.contains(slug));
        special.archived = data
            .world
            .repos
            .iter()
            .filter(|r| r.archived && !r.deleted)
            .map(|r| r.listed_slug.clone())
            .collect();
        special.renamed = data
            .world
            .repos
            .iter()
            .filter(|r| !r.deleted)
            .filter_map(|r| {
                r.renamed_from
                    .as_ref()
                    .map(|from| crate::world::RenamedRepo {
                        from: from.clone(),
                        to: r.name_with_owner(),
                    })
            })
            .collect();
        let non_github_links = data
            .list
            .entries
            .iter()
            .filter_map(|e| e.link.clone())
            .filter(|l| crate::list::github_slug(l).is_none())
            .collect();
        let totals = TruthTotals {
            repos: repos.len(),
            issues_and_pulls: data.world.issue_total(),
            open_beginner_issues: repos.iter().map(|r| r.open_beginner_issues.len()).sum(),
            open_beginner_issues_with_open_pr: repos
                .iter()
                .map(|r| r.open_beginner_issues_with_open_pr.len())
                .sum(),
            open_beginner_issues_assigned: repos
                .iter()
                .map(|r| r.open_beginner_issues_assigned.len())
                .sum(),
        };
        Truth {
            seed: self.config.seed,
            scale: self.config.scale,
            clock: data.world.now_iso(),
            repos,
            special,
            non_github_links,
            totals,
        }
    }
}
