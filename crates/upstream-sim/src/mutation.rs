//! Control-API mutations of the simulated upstream. Each operation advances
//! the simulated clock one minute and stamps what it touches, so GraphQL,
//! REST and the raw list all see the change at once.

use serde::{Deserialize, Serialize};

use crate::clock::MUTATION_STEP_SECS;
use crate::list::{github_slug, AwesomeList, ListBreak, ListEntry};
use crate::world::{node_id, IssueMeta, IssueOverride, Label, Role, SpecialFlag, World, FLAG_PR};

/// One requested change.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum MutationOp {
    CloseIssue {
        repo: String,
        number: u32,
        #[serde(default)]
        not_planned: bool,
    },
    ReopenIssue {
        repo: String,
        number: u32,
    },
    /// Without `title` or `body`, the body is regenerated as a new revision.
    EditIssue {
        repo: String,
        number: u32,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        body: Option<String>,
    },
    AddIssue {
        repo: String,
        #[serde(default)]
        labels: Vec<String>,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        assignees: Vec<String>,
        #[serde(default)]
        pull_request: bool,
    },
    LabelIssue {
        repo: String,
        number: u32,
        label: String,
    },
    UnlabelIssue {
        repo: String,
        number: u32,
        label: String,
    },
    AssignIssue {
        repo: String,
        number: u32,
        assignees: Vec<String>,
    },
    /// Adds one login to the issue's assignees.
    AddAssignee {
        repo: String,
        number: u32,
        login: String,
    },
    /// A new comment: the comment count and `updatedAt` change.
    CommentIssue {
        repo: String,
        number: u32,
    },
    /// A new pull request that closes `closes` when merged.
    OpenPullRequest {
        repo: String,
        closes: Vec<u32>,
        #[serde(default)]
        title: Option<String>,
        /// Linked by hand rather than by a closing keyword.
        #[serde(default)]
        user_linked: bool,
        /// Stamp the referenced issues' `updatedAt` (GitHub adds a
        /// cross-reference to their timelines).
        #[serde(default = "yes")]
        touch_issues: bool,
    },
    /// Merges an open PR; GitHub then closes the issues it references.
    MergePullRequest {
        repo: String,
        number: u32,
        #[serde(default = "yes")]
        close_issues: bool,
    },
    /// Closes a PR without merging; its issues stay as they are.
    ClosePullRequest {
        repo: String,
        number: u32,
        #[serde(default)]
        touch_issues: bool,
    },
    RenameLabel {
        repo: String,
        from: String,
        to: String,
    },
    ArchiveRepo {
        repo: String,
    },
    UnarchiveRepo {
        repo: String,
    },
    DeleteRepo {
        repo: String,
    },
    RenameRepo {
        repo: String,
        to: String,
    },
    AddListEntry {
        link: String,
        #[serde(default)]
        label: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        technologies: Option<Vec<String>>,
    },
    RemoveListEntry {
        link: String,
    },
    BreakList {
        mode: ListBreak,
    },
    RestoreList,
}

fn yes() -> bool {
    true
}

/// What one operation touched.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Applied {
    pub op: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    /// GraphQL node ids of what changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    pub at: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MutationError {
    #[error("op {index}: repository '{repo}' is not simulated")]
    UnknownRepo { index: usize, repo: String },
    #[error("op {index}: repository '{repo}' is deleted")]
    DeletedRepo { index: usize, repo: String },
    #[error("op {index}: {repo} has no issue #{number}")]
    UnknownIssue {
        index: usize,
        repo: String,
        number: u32,
    },
    #[error("op {index}: {repo} has no label '{label}'")]
    UnknownLabel {
        index: usize,
        repo: String,
        label: String,
    },
    #[error("op {index}: {repo} already has a label named '{label}'")]
    LabelExists {
        index: usize,
        repo: String,
        label: String,
    },
    #[error("op {index}: {repo} cannot hold more than 32 labels")]
    TooManyLabels { index: usize, repo: String },
    #[error("op {index}: '{slug}' is already taken")]
    SlugTaken { index: usize, slug: String },
    #[error("op {index}: {message}")]
    Invalid { index: usize, message: String },
}

/// The dataset and the list, mutated together.
pub(crate) struct Upstream<'a> {
    pub world: &'a mut World,
    pub list: &'a mut AwesomeList,
    pub initial_list: &'a AwesomeList,
}

impl Upstream<'_> {
    /// Applies one operation; `index` only labels errors.
    pub(crate) fn apply(
        &mut self,
        index: usize,
        op: &MutationOp,
    ) -> Result<Applied, MutationError> {
        self.world.clock += MUTATION_STEP_SECS;
        let now = self.world.clock;
        let at = self.world.now_iso();
        let mut applied = Applied {
            op: op_name(op).to_string(),
            at,
            ..Applied::default()
        };
        match op {
            MutationOp::CloseIssue {
                repo,
                number,
                not_planned,
            } => {
                let (r, m) = self.issue_mut(index, repo, *number)?;
                if m.is_open() {
                    m.closed = now as u32;
                }
                if *not_planned {
                    m.flags |= crate::world::FLAG_NOT_PLANNED;
                }
                m.updated = now as u32;
                self.describe_issue(&mut applied, r, *number);
            }
            MutationOp::ReopenIssue { repo, number } => {
                let (r, m) = self.issue_mut(index, repo, *number)?;
                m.closed = 0;
                m.flags &= !crate::world::FLAG_NOT_PLANNED;
                m.updated = now as u32;
                self.describe_issue(&mut applied, r, *number);
            }
            MutationOp::EditIssue {
                repo,
                number,
                title,
                body,
            } => {
                let (r, m) = self.issue_mut(index, repo, *number)?;
                m.updated = now as u32;
                if title.is_none() && body.is_none() {
                    // A new revision of the generated body.
                    m.edits = m.edits.saturating_add(1);
                }
                let o = self.world.overrides.entry((r, *number)).or_default();
                if let Some(t) = title {
                    o.title = Some(t.clone());
                }
                if let Some(b) = body {
                    o.body = Some(b.clone());
                } else if title.is_none() {
                    o.body = None;
                }
                // A body edit (given, or a new revision) is what `lastEditedAt`
                // records; a title alone changes only `title` and `updatedAt`.
                if body.is_some() || title.is_none() {
                    o.last_edited = Some(now);
                }
                self.describe_issue(&mut applied, r, *number);
            }
            MutationOp::AddIssue {
                repo,
                labels,
                title,
                body,
                assignees,
                pull_request,
            } => {
                let r = self.live_repo(index, repo)?;
                let mut mask = 0u32;
                for name in labels {
                    mask |= 1 << self.ensure_label(index, r, name, now)?;
                }
                let repo_ref = &mut self.world.repos[r];
                let number = repo_ref.issues.len() as u32 + 1;
                repo_ref.issues.push(IssueMeta {
                    created: now as u32,
                    updated: now as u32,
                    closed: 0,
                    labels: mask,
                    comments: 0,
                    author: (number % 4096) as u16,
                    edits: 0,
                    assignees: 0,
                    flags: if *pull_request { FLAG_PR } else { 0 },
                });
                repo_ref.updated_at = now;
                self.world.overrides.insert(
                    (r, number),
                    IssueOverride {
                        title: Some(title.clone().unwrap_or_else(|| {
                            crate::prose::title(self.world.seed, self.world.repos[r].id, number)
                        })),
                        body: body.clone(),
                        assignees: Some(assignees.clone()),
                        last_edited: None,
                    },
                );
                self.describe_issue(&mut applied, r, number);
            }
            MutationOp::LabelIssue {
                repo,
                number,
                label,
            } => {
                let r = self.live_repo(index, repo)?;
                let bit = self.ensure_label(index, r, label, now)?;
                let (_, m) = self.issue_mut(index, repo, *number)?;
                m.labels |= 1 << bit;
                m.updated = now as u32;
                self.describe_issue(&mut applied, r, *number);
            }
            MutationOp::UnlabelIssue {
                repo,
                number,
                label,
            } => {
                let r = self.live_repo(index, repo)?;
                let bit = self.world.repos[r].label_index(label).ok_or_else(|| {
                    MutationError::UnknownLabel {
                        index,
                        repo: repo.clone(),
                        label: label.clone(),
                    }
                })?;
                let (_, m) = self.issue_mut(index, repo, *number)?;
                m.labels &= !(1 << bit);
                m.updated = now as u32;
                self.describe_issue(&mut applied, r, *number);
            }
            MutationOp::AssignIssue {
                repo,
                number,
                assignees,
            } => {
                let (r, m) = self.issue_mut(index, repo, *number)?;
                m.updated = now as u32;
                m.assignees = assignees.len().min(255) as u8;
                self.world
                    .overrides
                    .entry((r, *number))
                    .or_default()
                    .assignees = Some(assignees.clone());
                self.describe_issue(&mut applied, r, *number);
            }
            MutationOp::AddAssignee { .. }
            | MutationOp::CommentIssue { .. }
            | MutationOp::OpenPullRequest { .. }
            | MutationOp::MergePullRequest { .. }
            | MutationOp::ClosePullRequest { .. } => {
                self.apply_activity(index, op, now, &mut applied)?;
            }
            MutationOp::RenameLabel { repo, from, to } => {
                let r = self.live_repo(index, repo)?;
                let rr = &mut self.world.repos[r];
                let i = rr
                    .label_index(from)
                    .ok_or_else(|| MutationError::UnknownLabel {
                        index,
                        repo: repo.clone(),
                        label: from.clone(),
                    })?;
                if rr.label_index(to).is_some_and(|j| j != i) {
                    return Err(MutationError::LabelExists {
                        index,
                        repo: repo.clone(),
                        label: to.clone(),
                    });
                }
                rr.labels[i].name = to.clone().into();
                rr.labels[i].updated_at = now;
                rr.updated_at = now;
                applied.repo = Some(rr.name_with_owner());
                applied.ids.push(node_id("LA_kwDO", rr.labels[i].id));
            }
            MutationOp::ArchiveRepo { repo } | MutationOp::UnarchiveRepo { repo } => {
                let r = self.live_repo(index, repo)?;
                let rr = &mut self.world.repos[r];
                rr.archived = matches!(op, MutationOp::ArchiveRepo { .. });
                rr.updated_at = now;
                applied.repo = Some(rr.name_with_owner());
                applied.ids.push(rr.node_id());
            }
            MutationOp::DeleteRepo { repo } => {
                let r = self.live_repo(index, repo)?;
                let rr = &mut self.world.repos[r];
                rr.deleted = true;
                rr.updated_at = now;
                applied.repo = Some(rr.name_with_owner());
                applied.ids.push(rr.node_id());
            }
            MutationOp::RenameRepo { repo, to } => {
                let r = self.live_repo(index, repo)?;
                if !to.contains('/') || to.split('/').any(str::is_empty) {
                    return Err(MutationError::Invalid {
                        index,
                        message: format!("'{to}' is not owner/name"),
                    });
                }
                if self.world.find_any(to).is_some_and(|j| j != r) {
                    return Err(MutationError::SlugTaken {
                        index,
                        slug: to.clone(),
                    });
                }
                self.world.rename(r, to);
                let rr = &mut self.world.repos[r];
                rr.updated_at = now;
                applied.repo = Some(rr.name_with_owner());
                applied.ids.push(rr.node_id());
            }
            MutationOp::AddListEntry {
                link,
                label,
                name,
                description,
                technologies,
            } => {
                let entry = ListEntry {
                    name: name.clone().unwrap_or_else(|| {
                        link.trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("project")
                            .to_string()
                    }),
                    link: Some(link.clone()),
                    label: label.clone(),
                    technologies: technologies
                        .clone()
                        .unwrap_or_else(|| vec!["Python".into()]),
                    description: description
                        .clone()
                        .unwrap_or_else(|| "A project added to the list during the test.".into()),
                };
                if github_slug(link).is_some() {
                    let r = self.world.add_repo(&entry, Role::Normal, SpecialFlag::None);
                    let rr = &self.world.repos[r];
                    applied.repo = Some(rr.name_with_owner());
                    applied.ids.push(rr.node_id());
                }
                self.list.push(entry);
            }
            MutationOp::RemoveListEntry { link } => {
                if self.list.remove_link(link) == 0 {
                    return Err(MutationError::Invalid {
                        index,
                        message: format!("no list entry links to {link}"),
                    });
                }
            }
            MutationOp::BreakList { mode } => self.list.apply_break(*mode, self.world.seed),
            MutationOp::RestoreList => *self.list = self.initial_list.clone(),
        }
        Ok(applied)
    }

    fn describe_issue(&self, applied: &mut Applied, r: usize, number: u32) {
        let repo = &self.world.repos[r];
        applied.repo = Some(repo.name_with_owner());
        applied.number = Some(number);
        let prefix = if repo.issue(number).is_some_and(|m| m.is_pr()) {
            "PR_kwDO"
        } else {
            "I_kwDO"
        };
        applied.ids.push(node_id(prefix, repo.issue_id(number)));
    }

    fn live_repo(&self, index: usize, slug: &str) -> Result<usize, MutationError> {
        let r = self
            .world
            .find_any(slug)
            .ok_or_else(|| MutationError::UnknownRepo {
                index,
                repo: slug.to_string(),
            })?;
        if self.world.repos[r].deleted {
            return Err(MutationError::DeletedRepo {
                index,
                repo: slug.to_string(),
            });
        }
        Ok(r)
    }

    fn issue_mut(
        &mut self,
        index: usize,
        slug: &str,
        number: u32,
    ) -> Result<(usize, &mut IssueMeta), MutationError> {
        let r = self.live_repo(index, slug)?;
        let repo = &mut self.world.repos[r];
        repo.updated_at = self.world.clock;
        let meta = (number as usize)
            .checked_sub(1)
            .and_then(|i| repo.issues.get_mut(i))
            .ok_or_else(|| MutationError::UnknownIssue {
                index,
                repo: slug.to_string(),
                number,
            })?;
        Ok((r, meta))
    }

    /// Assignees, comments and pull requests: activity on issues.
    fn apply_activity(
        &mut self,
        index: usize,
        op: &MutationOp,
        now: i64,
        applied: &mut Applied,
    ) -> Result<(), MutationError> {
        match op {
            MutationOp::AddAssignee {
                repo,
                number,
                login,
            } => {
                let r = self.live_repo(index, repo)?;
                let mut logins = self.world.issue_assignees(r, *number);
                if !logins.iter().any(|l| l.eq_ignore_ascii_case(login)) {
                    logins.push(login.clone());
                }
                let (_, m) = self.issue_mut(index, repo, *number)?;
                m.updated = now as u32;
                m.assignees = logins.len().min(255) as u8;
                self.world
                    .overrides
                    .entry((r, *number))
                    .or_default()
                    .assignees = Some(logins);
                self.describe_issue(applied, r, *number);
            }
            MutationOp::CommentIssue { repo, number } => {
                let (r, m) = self.issue_mut(index, repo, *number)?;
                m.comments = m.comments.saturating_add(1);
                m.updated = now as u32;
                self.describe_issue(applied, r, *number);
            }
            MutationOp::OpenPullRequest {
                repo,
                closes,
                title,
                user_linked,
                touch_issues,
            } => {
                let r = self.live_repo(index, repo)?;
                for n in closes {
                    self.plain_issue(index, repo, *n)?;
                }
                let pr = self.new_pull_request(r, title.as_deref(), now);
                for n in closes {
                    self.world
                        .links
                        .entry((r, *n))
                        .or_default()
                        .push(crate::pulls::PrLink {
                            pr,
                            user_linked: *user_linked,
                        });
                    if *touch_issues {
                        self.issue_mut(index, repo, *n)?.1.updated = now as u32;
                    }
                }
                self.describe_issue(applied, r, pr);
            }
            MutationOp::MergePullRequest {
                repo,
                number,
                close_issues,
            } => {
                let r = self.end_pull_request(index, repo, *number, now, true)?;
                if *close_issues {
                    for n in self.issues_closed_by(r, *number) {
                        let (_, m) = self.issue_mut(index, repo, n)?;
                        if m.is_open() {
                            m.closed = now as u32;
                            m.flags &= !crate::world::FLAG_NOT_PLANNED;
                            m.updated = now as u32;
                        }
                    }
                }
                self.describe_issue(applied, r, *number);
            }
            MutationOp::ClosePullRequest {
                repo,
                number,
                touch_issues,
            } => {
                let r = self.end_pull_request(index, repo, *number, now, false)?;
                if *touch_issues {
                    for n in self.issues_closed_by(r, *number) {
                        self.issue_mut(index, repo, n)?.1.updated = now as u32;
                    }
                }
                self.describe_issue(applied, r, *number);
            }
            _ => unreachable!("apply routes only activity ops here"),
        }
        Ok(())
    }

    /// An issue that is not a pull request.
    fn plain_issue(&mut self, index: usize, slug: &str, number: u32) -> Result<(), MutationError> {
        let (_, m) = self.issue_mut(index, slug, number)?;
        if m.is_pr() {
            return Err(MutationError::Invalid {
                index,
                message: format!("#{number} of {slug} is a pull request, not an issue"),
            });
        }
        Ok(())
    }

    /// Appends an open pull request to repository `r`; returns its number.
    fn new_pull_request(&mut self, r: usize, title: Option<&str>, now: i64) -> u32 {
        let repo = &mut self.world.repos[r];
        let number = repo.issues.len() as u32 + 1;
        repo.issues.push(IssueMeta {
            created: now as u32,
            updated: now as u32,
            closed: 0,
            labels: 0,
            comments: 0,
            author: (number % 4096) as u16,
            edits: 0,
            assignees: 0,
            flags: FLAG_PR,
        });
        repo.updated_at = now;
        let title = title.map(str::to_string).unwrap_or_else(|| {
            format!(
                "Fix: {}",
                crate::prose::title(self.world.seed, self.world.repos[r].id, number)
            )
        });
        self.world.overrides.insert(
            (r, number),
            IssueOverride {
                title: Some(title),
                ..IssueOverride::default()
            },
        );
        number
    }

    /// Closes an open pull request, merged or not; returns its repository.
    fn end_pull_request(
        &mut self,
        index: usize,
        slug: &str,
        number: u32,
        now: i64,
        merge: bool,
    ) -> Result<usize, MutationError> {
        let (r, m) = self.issue_mut(index, slug, number)?;
        if !m.is_pr() || !m.is_open() {
            return Err(MutationError::Invalid {
                index,
                message: format!("#{number} of {slug} is not an open pull request"),
            });
        }
        m.closed = now as u32;
        m.updated = now as u32;
        if merge {
            m.flags |= crate::pulls::FLAG_MERGED;
        }
        Ok(r)
    }

    /// The issues pull request `pr` of repository `r` references.
    fn issues_closed_by(&self, r: usize, pr: u32) -> Vec<u32> {
        let mut issues: Vec<u32> = self
            .world
            .links
            .iter()
            .filter(|((repo, _), links)| *repo == r && links.iter().any(|l| l.pr == pr))
            .map(|((_, n), _)| *n)
            .collect();
        issues.sort_unstable();
        issues
    }

    /// Index of the label, creating it (as GitHub does when labelling) if needed.
    fn ensure_label(
        &mut self,
        index: usize,
        r: usize,
        name: &str,
        now: i64,
    ) -> Result<usize, MutationError> {
        let repo = &mut self.world.repos[r];
        if let Some(i) = repo.label_index(name) {
            return Ok(i);
        }
        if repo.labels.len() >= 32 {
            return Err(MutationError::TooManyLabels {
                index,
                repo: repo.name_with_owner(),
            });
        }
        let i = repo.labels.len();
        repo.labels.push(Label {
            id: 3_000_000_000 + (repo.id - 100_000_000) * 64 + i as u64,
            name: name.to_string().into(),
            color: "ededed".into(),
            description: None,
            is_default: false,
            beginner: false,
            created_at: now,
            updated_at: now,
        });
        Ok(i)
    }
}

fn op_name(op: &MutationOp) -> &'static str {
    match op {
        MutationOp::CloseIssue { .. } => "close_issue",
        MutationOp::ReopenIssue { .. } => "reopen_issue",
        MutationOp::EditIssue { .. } => "edit_issue",
        MutationOp::AddIssue { .. } => "add_issue",
        MutationOp::LabelIssue { .. } => "label_issue",
        MutationOp::UnlabelIssue { .. } => "unlabel_issue",
        MutationOp::AssignIssue { .. } => "assign_issue",
        MutationOp::AddAssignee { .. } => "add_assignee",
        MutationOp::CommentIssue { .. } => "comment_issue",
        MutationOp::OpenPullRequest { .. } => "open_pull_request",
        MutationOp::MergePullRequest { .. } => "merge_pull_request",
        MutationOp::ClosePullRequest { .. } => "close_pull_request",
        MutationOp::RenameLabel { .. } => "rename_label",
        MutationOp::ArchiveRepo { .. } => "archive_repo",
        MutationOp::UnarchiveRepo { .. } => "unarchive_repo",
        MutationOp::DeleteRepo { .. } => "delete_repo",
        MutationOp::RenameRepo { .. } => "rename_repo",
        MutationOp::AddListEntry { .. } => "add_list_entry",
        MutationOp::RemoveListEntry { .. } => "remove_list_entry",
        MutationOp::BreakList { .. } => "break_list",
        MutationOp::RestoreList => "restore_list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream_parts() -> (World, AwesomeList) {
        let list = AwesomeList::fixture();
        (World::generate(42, &list), list)
    }

    #[test]
    fn closing_an_issue_advances_the_clock_and_stamps_it() {
        let (mut world, mut list) = upstream_parts();
        let initial = list.clone();
        let slug = world
            .repos
            .iter()
            .find(|r| r.issues.len() > 3 && !r.deleted)
            .unwrap()
            .listed_slug
            .clone();
        let mut up = Upstream {
            world: &mut world,
            list: &mut list,
            initial_list: &initial,
        };
        let applied = up
            .apply(
                0,
                &MutationOp::CloseIssue {
                    repo: slug.clone(),
                    number: 2,
                    not_planned: false,
                },
            )
            .unwrap();
        assert_eq!(applied.at, "2024-05-01T12:01:00Z");
        let r = world.find_any(&slug).unwrap();
        let m = world.repos[r].issue(2).unwrap();
        assert!(!m.is_open());
        assert_eq!(m.updated as i64, world.clock);
    }

    #[test]
    fn unknown_repo_is_reported_with_its_op_index() {
        let (mut world, mut list) = upstream_parts();
        let initial = list.clone();
        let mut up = Upstream {
            world: &mut world,
            list: &mut list,
            initial_list: &initial,
        };
        let err = up
            .apply(
                3,
                &MutationOp::ArchiveRepo {
                    repo: "no/such".into(),
                },
            )
            .unwrap_err();
        assert_eq!(
            err,
            MutationError::UnknownRepo {
                index: 3,
                repo: "no/such".into()
            }
        );
    }
}
