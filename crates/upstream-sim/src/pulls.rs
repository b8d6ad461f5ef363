//! Pull requests linked to issues: the PRs that will close an issue when
//! merged (GitHub's `closedByPullRequestsReferences`), their open, closed
//! or merged state, seeded per repository and changed by mutations.
//!
//! Pull requests are the repository's `FLAG_PR` entries (REST lists them
//! among the issues, as GitHub does); a merged one also has `FLAG_MERGED`.

use crate::rng::{hash_str, key, Rng};
use crate::world::{IssueMeta, Repo, World};

/// Set on a pull request that was merged (it is also closed).
pub(crate) const FLAG_MERGED: u8 = 16;

/// One PR → issue reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrLink {
    pub pr: u32,
    /// Linked by hand in the sidebar (GitHub's `userLinkedOnly`), rather
    /// than by a closing keyword in the PR's description.
    pub user_linked: bool,
}

/// A pull request's state as GraphQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrState {
    Open,
    Closed,
    Merged,
}

impl PrState {
    pub(crate) fn of(m: &IssueMeta) -> PrState {
        if m.is_open() {
            PrState::Open
        } else if m.flags & FLAG_MERGED != 0 {
            PrState::Merged
        } else {
            PrState::Closed
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            PrState::Open => "OPEN",
            PrState::Closed => "CLOSED",
            PrState::Merged => "MERGED",
        }
    }
}

impl World {
    /// Seeds a repository's merged flags and links from its own stream
    /// (the rest of the dataset is unchanged): about 70% of closed PRs were
    /// merged; half of all PRs close an issue — an open PR an open issue
    /// (a beginner one when it can), a merged PR a closed issue, a PR closed
    /// unmerged an open issue. A tenth are linked by hand.
    pub(crate) fn seed_links(&mut self, idx: usize) {
        let repo = &mut self.repos[idx];
        let mut rng = Rng::new(key(&[
            self.seed,
            hash_str(&repo.listed_slug),
            hash_str("linked pull requests"),
        ]));
        let mask = repo.beginner_mask();
        let pick = |rng: &mut Rng, pool: &[u32]| (!pool.is_empty()).then(|| *rng.pick(pool));
        let (mut open_beginner, mut open, mut closed) = (Vec::new(), Vec::new(), Vec::new());
        for (i, m) in repo.issues.iter().enumerate() {
            let n = i as u32 + 1;
            match (m.is_pr(), m.is_open()) {
                (false, true) if m.labels & mask != 0 => open_beginner.push(n),
                (false, true) => open.push(n),
                (false, false) => closed.push(n),
                _ => {}
            }
        }
        let any_open: Vec<u32> = open_beginner.iter().chain(&open).copied().collect();
        let mut links = Vec::new();
        for i in 0..repo.issues.len() {
            let m = &mut repo.issues[i];
            if !m.is_pr() {
                continue;
            }
            if !m.is_open() && rng.chance(0.7) {
                m.flags |= FLAG_MERGED;
            }
            if !rng.chance(0.5) {
                continue;
            }
            let target = match PrState::of(m) {
                PrState::Open if rng.chance(0.6) => pick(&mut rng, &open_beginner),
                PrState::Merged => pick(&mut rng, &closed),
                _ => pick(&mut rng, &any_open),
            };
            let user_linked = rng.chance(0.1);
            if let Some(issue) = target {
                links.push((issue, i as u32 + 1, user_linked));
            }
        }
        for (issue, pr, user_linked) in links {
            self.links
                .entry((idx, issue))
                .or_default()
                .push(PrLink { pr, user_linked });
        }
    }

    /// The PRs referencing issue `number` of repository `idx`, in PR order.
    pub(crate) fn linked_prs(&self, idx: usize, number: u32) -> &[PrLink] {
        self.links
            .get(&(idx, number))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether an open PR references the issue.
    pub(crate) fn has_open_pr(&self, repo: &Repo, number: u32) -> bool {
        self.linked_prs(repo.idx, number)
            .iter()
            .any(|l| repo.issue(l.pr).is_some_and(|m| m.is_pr() && m.is_open()))
    }
}
