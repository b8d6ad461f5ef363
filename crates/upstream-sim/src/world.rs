//! The seeded dataset: every repository on the served list with its labels,
//! languages, topics and compact per-issue metadata, plus the deliberately
//! awkward repositories (missing, renamed, archived, unresolvable label,
//! paginated) that the workers must cope with.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use serde::Serialize;

use crate::clock::{iso8601, BASE_EPOCH};
use crate::list::{github_path_original_case, github_slug, split_labels, AwesomeList, ListEntry};
use crate::prose;
use crate::rng::{hash_str, key, Rng};

/// First database id handed to repositories; `/repositories/{id}` inverts it.
const REPO_ID_BASE: u64 = 100_000_000;

pub(crate) const FLAG_PR: u8 = 1;
pub(crate) const FLAG_EMPTY_BODY: u8 = 2;
pub(crate) const FLAG_LOCKED: u8 = 4;
pub(crate) const FLAG_NOT_PLANNED: u8 = 8;

/// Languages a repository may report: (name, colour).
pub(crate) const LANGUAGES: &[(&str, &str)] = &[
    ("JavaScript", "#f1e05a"),
    ("TypeScript", "#3178c6"),
    ("Python", "#3572A5"),
    ("Rust", "#dea584"),
    ("Go", "#00ADD8"),
    ("Java", "#b07219"),
    ("C#", "#178600"),
    ("C++", "#f34b7d"),
    ("C", "#555555"),
    ("Ruby", "#701516"),
    ("PHP", "#4F5D95"),
    ("Kotlin", "#A97BFF"),
    ("Swift", "#F05138"),
    ("Dart", "#00B4AB"),
    ("Elixir", "#6e4a7e"),
    ("Elm", "#60B5CC"),
    ("Haskell", "#5e5086"),
    ("Clojure", "#db5855"),
    ("Scala", "#c22d40"),
    ("Perl", "#0298c3"),
    ("Julia", "#a270ba"),
    ("Smalltalk", "#596706"),
    ("CSS", "#563d7c"),
    ("HTML", "#e34c26"),
    ("Shell", "#89e051"),
    ("Dockerfile", "#384d54"),
    ("Makefile", "#427819"),
    ("Pug", "#a86454"),
    ("MDX", "#fcb32c"),
    ("Jinja", "#a52a22"),
    ("SCSS", "#c6538c"),
    ("Vue", "#41b883"),
];

const TOPICS: &[&str] = &[
    "hacktoberfest",
    "good-first-issue",
    "open-source",
    "beginner-friendly",
    "cli",
    "web",
    "api",
    "machine-learning",
    "devops",
    "documentation",
    "testing",
    "react",
    "kubernetes",
    "database",
    "game",
    "education",
    "accessibility",
    "developer-tools",
    "framework",
    "library",
    "self-hosted",
    "security",
    "data-visualization",
    "mobile",
];

/// GitHub's default labels plus a few common extras: (name, colour, description, default).
const GENERIC_LABELS: &[(&str, &str, &str, bool)] = &[
    ("bug", "d73a4a", "Something isn't working", true),
    ("enhancement", "a2eeef", "New feature or request", true),
    (
        "documentation",
        "0075ca",
        "Improvements or additions to documentation",
        true,
    ),
    (
        "question",
        "d876e3",
        "Further information is requested",
        true,
    ),
    (
        "duplicate",
        "cfd3d7",
        "This issue or pull request already exists",
        true,
    ),
    ("wontfix", "ffffff", "This will not be worked on", true),
    ("invalid", "e4e669", "This doesn't seem right", true),
    ("help wanted", "008672", "Extra attention is needed", true),
    (
        "dependencies",
        "0366d6",
        "Pull requests that update a dependency file",
        false,
    ),
    (
        "needs triage",
        "ededed",
        "Waiting for a maintainer to look",
        false,
    ),
    ("performance", "fbca04", "Makes things faster", false),
    (
        "refactor",
        "c5def5",
        "Code change that neither fixes a bug nor adds a feature",
        false,
    ),
    ("tests", "bfd4f2", "Test coverage", false),
    (
        "area: docs",
        "1d76db",
        "Touches the documentation site",
        false,
    ),
    ("priority: low", "0e8a16", "Nice to have", false),
    ("priority: high", "b60205", "Needs attention soon", false),
    (
        "breaking change",
        "e11d21",
        "Changes public behaviour",
        false,
    ),
];

/// Per-issue metadata: 24 bytes, so a quarter of a million issues stay small.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IssueMeta {
    pub created: u32,
    pub updated: u32,
    /// 0 while open.
    pub closed: u32,
    /// Bit `i` set when the issue carries `repo.labels[i]`.
    pub labels: u32,
    pub comments: u16,
    pub author: u16,
    pub edits: u16,
    pub assignees: u8,
    pub flags: u8,
}

impl IssueMeta {
    pub(crate) fn is_open(&self) -> bool {
        self.closed == 0
    }
    pub(crate) fn is_pr(&self) -> bool {
        self.flags & FLAG_PR != 0
    }
}

/// Text set by a mutation, overriding the generated text.
#[derive(Debug, Clone, Default)]
pub(crate) struct IssueOverride {
    pub title: Option<String>,
    pub body: Option<String>,
    pub assignees: Option<Vec<String>>,
    /// When the body was last edited (GraphQL `lastEditedAt`).
    pub last_edited: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub id: u64,
    pub name: Cow<'static, str>,
    pub color: Cow<'static, str>,
    pub description: Option<Cow<'static, str>>,
    pub is_default: bool,
    /// True for the label(s) the list's entry refers to.
    pub beginner: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Normal,
    Paginated,
    LabelMissing,
    CaseDiffers,
    Scale,
}

#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub idx: usize,
    pub id: u64,
    /// Lower-case `owner/name` as the list links it.
    pub listed_slug: String,
    pub listed_labels: Vec<String>,
    pub owner: String,
    pub name: String,
    pub owner_is_org: bool,
    pub role: Role,
    pub deleted: bool,
    pub archived: bool,
    pub renamed_from: Option<String>,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub stars: u32,
    pub forks: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub pushed_at: i64,
    /// (index into [`LANGUAGES`], bytes), largest first.
    pub languages: Vec<(u8, u32)>,
    pub topics: Vec<&'static str>,
    pub labels: Vec<Label>,
    /// Issue `n` is `issues[n - 1]`.
    pub issues: Vec<IssueMeta>,
}

impl Repo {
    pub(crate) fn name_with_owner(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub(crate) fn html_url(&self) -> String {
        format!("https://github.com/{}/{}", self.owner, self.name)
    }

    pub(crate) fn node_id(&self) -> String {
        node_id("R_kgDO", self.id)
    }

    pub(crate) fn owner_id(&self) -> u64 {
        1_000 + hash_str(&self.owner.to_lowercase()) % 90_000_000
    }

    pub(crate) fn issue(&self, number: u32) -> Option<&IssueMeta> {
        (number as usize)
            .checked_sub(1)
            .and_then(|i| self.issues.get(i))
    }

    pub(crate) fn issue_id(&self, number: u32) -> u64 {
        2_000_000_000 + (self.id - REPO_ID_BASE) * 100_000 + u64::from(number)
    }

    /// Bit mask of labels whose names equal any of `names`, case-insensitively.
    pub(crate) fn label_mask(&self, names: &[String]) -> u32 {
        let wanted: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        self.labels
            .iter()
            .enumerate()
            .filter(|(_, l)| wanted.contains(&l.name.to_lowercase()))
            .fold(0u32, |m, (i, _)| m | (1 << i))
    }

    pub(crate) fn beginner_mask(&self) -> u32 {
        self.labels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.beginner)
            .fold(0u32, |m, (i, _)| m | (1 << i))
    }

    pub(crate) fn label_index(&self, name: &str) -> Option<usize> {
        let lower = name.to_lowercase();
        self.labels
            .iter()
            .position(|l| l.name.to_lowercase() == lower)
    }

    pub(crate) fn primary_language(&self) -> Option<u8> {
        self.languages.first().map(|(l, _)| *l)
    }
}

/// Encodes an opaque GitHub-style global node id.
pub(crate) fn node_id(prefix: &str, id: u64) -> String {
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_be_bytes())
    )
}

/// How a slug resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    Current(usize),
    /// The slug is a former name of the repository (it was renamed).
    Former(usize),
    Missing,
}

/// The special repositories chosen for this seed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Specials {
    pub missing: Vec<String>,
    pub renamed: Vec<RenamedRepo>,
    pub archived: Vec<String>,
    pub label_missing: Vec<String>,
    pub label_case_differs: Vec<String>,
    pub label_hyphen_resolved: Vec<String>,
    pub paginated: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenamedRepo {
    pub from: String,
    pub to: String,
}

/// The whole simulated GitHub.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub seed: u64,
    pub clock: i64,
    pub repos: Vec<Repo>,
    slugs: HashMap<String, Lookup>,
    pub overrides: HashMap<(usize, u32), IssueOverride>,
    /// (repository, issue) → the pull requests that close it when merged.
    pub links: HashMap<(usize, u32), Vec<crate::pulls::PrLink>>,
    pub specials: Specials,
}

impl World {
    /// Builds the dataset for the list (already extended with scale entries).
    pub(crate) fn generate(seed: u64, list: &AwesomeList) -> World {
        let mut world = World {
            seed,
            clock: BASE_EPOCH,
            repos: Vec::new(),
            slugs: HashMap::new(),
            overrides: HashMap::new(),
            links: HashMap::new(),
            specials: Specials::default(),
        };
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<&ListEntry> = list
            .entries
            .iter()
            .filter(|e| {
                e.link
                    .as_deref()
                    .and_then(github_slug)
                    .is_some_and(|s| seen.insert(s))
            })
            .collect();
        let roles = choose_roles(seed, &entries);
        for (entry, role) in entries.iter().zip(roles.iter()) {
            world.add_repo(entry, role.role, role.flag);
        }
        world.collect_specials();
        world
    }

    fn collect_specials(&mut self) {
        let mut s = Specials::default();
        for r in &self.repos {
            match r.role {
                Role::Paginated => s.paginated.push(r.listed_slug.clone()),
                Role::LabelMissing => s.label_missing.push(r.listed_slug.clone()),
                Role::CaseDiffers => s.label_case_differs.push(r.listed_slug.clone()),
                _ => {}
            }
            if r.deleted {
                s.missing.push(r.listed_slug.clone());
            }
            if r.archived {
                s.archived.push(r.listed_slug.clone());
            }
            if let Some(from) = &r.renamed_from {
                s.renamed.push(RenamedRepo {
                    from: from.clone(),
                    to: r.name_with_owner(),
                });
            }
            if !r.deleted
                && r.role != Role::LabelMissing
                && r.listed_labels.iter().any(|l| l.contains('-'))
            {
                s.label_hyphen_resolved.push(r.listed_slug.clone());
            }
        }
        self.specials = s;
    }

    /// Adds (or returns) the repository a GitHub list entry links to.
    pub(crate) fn add_repo(&mut self, entry: &ListEntry, role: Role, flag: SpecialFlag) -> usize {
        let link = entry.link.as_deref().unwrap_or_default();
        let slug = github_slug(link).expect("caller passes GitHub links");
        if let Some(Lookup::Current(i) | Lookup::Former(i)) = self.slugs.get(&slug) {
            return *i;
        }
        let (owner, name) = github_path_original_case(link).unwrap_or_else(|| split_slug(&slug));
        let idx = self.repos.len();
        let repo = generate_repo(self.seed, idx, &slug, owner, name, entry, role, flag);
        match &repo.renamed_from {
            Some(_) => {
                self.slugs.insert(slug, Lookup::Former(idx));
                self.slugs
                    .insert(repo.name_with_owner().to_lowercase(), Lookup::Current(idx));
            }
            None => {
                self.slugs.insert(slug, Lookup::Current(idx));
            }
        }
        self.repos.push(repo);
        self.seed_links(idx);
        idx
    }

    /// Resolves `owner/name` case-insensitively; deleted repositories are missing.
    pub(crate) fn lookup(&self, owner: &str, name: &str) -> Lookup {
        let slug = format!("{owner}/{name}").to_lowercase();
        match self.slugs.get(&slug) {
            Some(Lookup::Current(i)) if !self.repos[*i].deleted => Lookup::Current(*i),
            Some(Lookup::Former(i)) if !self.repos[*i].deleted => Lookup::Former(*i),
            _ => Lookup::Missing,
        }
    }

    /// Resolves any slug, following renames, including deleted repositories.
    pub(crate) fn find_any(&self, slug: &str) -> Option<usize> {
        match self.slugs.get(&slug.to_lowercase()) {
            Some(Lookup::Current(i) | Lookup::Former(i)) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn by_database_id(&self, id: u64) -> Option<usize> {
        let idx = id.checked_sub(REPO_ID_BASE)? as usize;
        self.repos.get(idx).filter(|r| !r.deleted).map(|_| idx)
    }

    pub(crate) fn rename(&mut self, idx: usize, new_slug: &str) {
        let old = self.repos[idx].name_with_owner();
        let (owner, name) = split_slug(new_slug);
        self.slugs.insert(old.to_lowercase(), Lookup::Former(idx));
        self.slugs
            .insert(new_slug.to_lowercase(), Lookup::Current(idx));
        let repo = &mut self.repos[idx];
        repo.renamed_from.get_or_insert(old);
        repo.owner = owner;
        repo.name = name;
    }

    pub(crate) fn issue_title(&self, idx: usize, number: u32) -> String {
        self.overrides
            .get(&(idx, number))
            .and_then(|o| o.title.clone())
            .unwrap_or_else(|| prose::title(self.seed, self.repos[idx].id, number))
    }

    /// The markdown body; empty when the issue was filed without one.
    pub(crate) fn issue_body(&self, idx: usize, number: u32) -> String {
        if let Some(body) = self
            .overrides
            .get(&(idx, number))
            .and_then(|o| o.body.clone())
        {
            return body;
        }
        let repo = &self.repos[idx];
        match repo.issue(number) {
            Some(m) if m.flags & FLAG_EMPTY_BODY != 0 && m.edits == 0 => String::new(),
            Some(m) => prose::body(self.seed, repo.id, number, m.edits),
            None => String::new(),
        }
    }

    pub(crate) fn issue_author(&self, idx: usize, number: u32) -> String {
        let author = self.repos[idx].issue(number).map_or(0, |m| m.author);
        prose::login(self.seed, u64::from(author))
    }

    pub(crate) fn issue_last_edited(&self, idx: usize, number: u32) -> Option<i64> {
        self.overrides
            .get(&(idx, number))
            .and_then(|o| o.last_edited)
    }

    pub(crate) fn issue_assignees(&self, idx: usize, number: u32) -> Vec<String> {
        if let Some(a) = self
            .overrides
            .get(&(idx, number))
            .and_then(|o| o.assignees.clone())
        {
            return a;
        }
        let repo = &self.repos[idx];
        let count = repo.issue(number).map_or(0, |m| m.assignees);
        (0..u64::from(count))
            .map(|k| {
                let h = key(&[self.seed, repo.id, u64::from(number), k, 0xA551]);
                prose::login(self.seed, h % prose::LOGIN_POOL)
            })
            .collect()
    }

    /// Total number of issues and pull requests across live repositories.
    pub(crate) fn issue_total(&self) -> usize {
        self.repos
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| r.issues.len())
            .sum()
    }
}

pub(crate) fn split_slug(slug: &str) -> (String, String) {
    match slug.split_once('/') {
        Some((o, n)) => (o.to_string(), n.to_string()),
        None => (slug.to_string(), slug.to_string()),
    }
}

/// Extra state a chosen repository starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpecialFlag {
    None,
    Missing,
    Renamed,
    Archived,
}

#[derive(Debug, Clone, Copy)]
struct Assignment {
    role: Role,
    flag: SpecialFlag,
}

/// Picks, deterministically from the seed, which listed repositories are the
/// awkward ones. Synthetic scale repositories are never special.
fn choose_roles(seed: u64, entries: &[&ListEntry]) -> Vec<Assignment> {
    let mut out: Vec<Assignment> = entries
        .iter()
        .map(|e| Assignment {
            role: if is_scale_link(e.link.as_deref().unwrap_or("")) {
                Role::Scale
            } else {
                Role::Normal
            },
            flag: SpecialFlag::None,
        })
        .collect();
    let mut pool: Vec<usize> = (0..entries.len())
        .filter(|&i| out[i].role == Role::Normal)
        .collect();
    let mut rng = Rng::new(key(&[seed, hash_str("special repositories")]));
    rng.shuffle(&mut pool);
    let single_label = |i: usize| split_labels(entries[i].label.as_deref()).len() == 1;
    let mut take = |n: usize, ok: &dyn Fn(usize) -> bool| -> Vec<usize> {
        let mut chosen = Vec::new();
        pool.retain(|&i| {
            if chosen.len() < n && ok(i) {
                chosen.push(i);
                false
            } else {
                true
            }
        });
        chosen
    };
    for i in take(3, &|_| true) {
        out[i].flag = SpecialFlag::Missing;
    }
    for i in take(1, &|i| single_label(i)) {
        out[i].flag = SpecialFlag::Renamed;
    }
    for i in take(3, &|i| single_label(i)) {
        out[i].flag = SpecialFlag::Archived;
    }
    for i in take(1, &|i| single_label(i)) {
        out[i].role = Role::LabelMissing;
    }
    for i in take(4, &|i| single_label(i)) {
        out[i].role = Role::Paginated;
    }
    let plain_gfi = |i: usize| entries[i].label.as_deref() == Some("good first issue");
    for i in take(3, &plain_gfi) {
        out[i].role = Role::CaseDiffers;
    }
    out
}

pub(crate) fn is_scale_link(link: &str) -> bool {
    link.starts_with("https://github.com/sim-org-")
}

/// The list entries `--scale N` appends.
pub(crate) fn scale_entries(n: u32, technologies: &[String]) -> Vec<ListEntry> {
    (0..n)
        .map(|k| ListEntry {
            name: format!("Sim Repo {k}"),
            link: Some(format!("https://github.com/sim-org-{k}/repo-{k}")),
            label: Some("good first issue".into()),
            technologies: vec![technologies[k as usize % technologies.len().max(1)].clone()],
            description: format!("Synthetic repository {k} for load testing the scraper."),
        })
        .collect()
}

fn technology_language(tech: &str) -> Option<u8> {
    let lang = match tech.to_lowercase().as_str() {
        "javascript" => "JavaScript",
        "typescript" | "angular" => "TypeScript",
        ".net" | "c#" => "C#",
        "python" | "mlops" => "Python",
        "ansible" => "Jinja",
        "markdown" => "MDX",
        "json" => "JavaScript",
        other => {
            return LANGUAGES
                .iter()
                .position(|(n, _)| n.to_lowercase() == other)
                .map(|p| p as u8)
        }
    };
    LANGUAGES
        .iter()
        .position(|(n, _)| *n == lang)
        .map(|p| p as u8)
}

fn beginner_names(listed: &[String], role: Role) -> Vec<String> {
    if role == Role::LabelMissing {
        return Vec::new();
    }
    listed
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let real = if l.contains('-') {
                l.replace('-', " ")
            } else {
                l.clone()
            };
            if role == Role::CaseDiffers && i == 0 {
                title_case(&real)
            } else {
                real
            }
        })
        .collect()
}

fn title_case(s: &str) -> String {
    s.split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lower-case, with hyphens and underscores read as spaces: how a lenient
/// matcher would compare labels.
pub(crate) fn loose_label(s: &str) -> String {
    s.to_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[allow(clippy::too_many_arguments)]
fn generate_repo(
    seed: u64,
    idx: usize,
    slug: &str,
    owner: String,
    name: String,
    entry: &ListEntry,
    role: Role,
    flag: SpecialFlag,
) -> Repo {
    let mut rng = Rng::new(key(&[seed, hash_str(slug)]));
    let id = REPO_ID_BASE + idx as u64;
    let listed_labels = split_labels(entry.label.as_deref());
    let age_days = rng.range(300, 4000) as i64;
    let created_at = BASE_EPOCH - age_days * 86_400 - rng.below(86_400) as i64;
    let archived = flag == SpecialFlag::Archived;
    let pushed_at = if archived {
        BASE_EPOCH - rng.range(400, 900) as i64 * 86_400
    } else {
        BASE_EPOCH - rng.range(600, 60 * 86_400) as i64
    };
    let updated_at = pushed_at.max(BASE_EPOCH - rng.range(60, 20 * 86_400) as i64);

    // Languages: the listed technology leads when it maps to one.
    let n_lang = rng.range(1, 6) as usize;
    let mut langs: Vec<u8> = Vec::new();
    if let Some(l) = entry
        .technologies
        .iter()
        .find_map(|t| technology_language(t))
    {
        langs.push(l);
    }
    while langs.len() < n_lang {
        let l = rng.below(LANGUAGES.len() as u64) as u8;
        if !langs.contains(&l) {
            langs.push(l);
        }
    }
    let mut size = rng.range(200_000, 20_000_000) as u32;
    let languages: Vec<(u8, u32)> = langs
        .into_iter()
        .map(|l| {
            let s = size;
            size = (size / rng.range(2, 9) as u32).max(1);
            (l, s)
        })
        .collect();

    let mut topics = Vec::new();
    for _ in 0..rng.range(0, 5) {
        let t = *rng.pick(TOPICS);
        if !topics.contains(&t) {
            topics.push(t);
        }
    }

    // Labels: a generic subset plus the beginner label(s) at a random spot.
    let beginner = beginner_names(&listed_labels, role);
    let listed_loose: Vec<String> = if role == Role::LabelMissing {
        listed_labels.iter().map(|l| loose_label(l)).collect()
    } else {
        Vec::new()
    };
    let mut labels: Vec<Label> = Vec::new();
    let n_generic = rng.range(4, 10) as usize;
    let mut generic: Vec<usize> = (0..GENERIC_LABELS.len()).collect();
    rng.shuffle(&mut generic[8..]);
    let mut picks: Vec<usize> = generic[..8.min(n_generic)].to_vec();
    picks.extend(generic[8..].iter().take(n_generic.saturating_sub(8)));
    picks.extend(
        generic[8..]
            .iter()
            .skip(n_generic.saturating_sub(8))
            .take(rng.range(0, 2) as usize),
    );
    for g in picks {
        let (gname, color, desc, is_default) = GENERIC_LABELS[g];
        let clashes = beginner.iter().any(|b| b.eq_ignore_ascii_case(gname))
            || (role == Role::LabelMissing && listed_loose.contains(&loose_label(gname)));
        if clashes {
            continue;
        }
        labels.push(Label {
            id: 0,
            name: Cow::Borrowed(gname),
            color: Cow::Borrowed(color),
            description: Some(Cow::Borrowed(desc)),
            is_default,
            beginner: false,
            created_at: 0,
            updated_at: 0,
        });
    }
    let insert_at = rng.range(0, labels.len() as u64) as usize;
    for (k, b) in beginner.iter().enumerate() {
        labels.insert(
            (insert_at + k).min(labels.len()),
            Label {
                id: 0,
                name: Cow::Owned(b.clone()),
                color: Cow::Borrowed("7057ff"),
                description: Some(Cow::Borrowed("Good for newcomers")),
                is_default: false,
                beginner: true,
                created_at: 0,
                updated_at: 0,
            },
        );
    }
    for (i, l) in labels.iter_mut().enumerate() {
        l.id = 3_000_000_000 + (id - REPO_ID_BASE) * 64 + i as u64;
        l.created_at = created_at + (i as i64) * 3_600;
        l.updated_at = l.created_at;
    }
    let beginner_bits: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.beginner)
        .map(|(i, _)| i)
        .collect();
    let generic_bits: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.beginner)
        .map(|(i, _)| i)
        .collect();

    let scale_k: u64 = slug
        .strip_prefix("sim-org-")
        .and_then(|rest| rest.split('/').next())
        .and_then(|k| k.parse().ok())
        .unwrap_or(idx as u64);
    let issues = generate_issues(
        &mut rng,
        scale_k,
        role,
        created_at,
        &beginner_bits,
        &generic_bits,
    );

    let (owner, name, renamed_from) = if flag == SpecialFlag::Renamed {
        let new_name = format!("{name}-renamed");
        (owner.clone(), new_name, Some(format!("{owner}/{name}")))
    } else {
        (owner, name, None)
    };
    let stars = (10f64.powf(1.0 + crate::rng::unit(rng.next_u64()) * 4.5)) as u32;
    Repo {
        idx,
        id,
        listed_slug: slug.to_string(),
        listed_labels,
        owner_is_org: rng.chance(0.75),
        role,
        deleted: flag == SpecialFlag::Missing,
        archived,
        renamed_from,
        description: if rng.chance(0.08) || entry.description.is_empty() {
            None
        } else {
            Some(entry.description.chars().take(350).collect())
        },
        homepage: if rng.chance(0.4) {
            Some(format!("https://{}.example.org", name.to_lowercase()))
        } else {
            None
        },
        stars,
        forks: stars / rng.range(3, 12) as u32,
        created_at,
        updated_at,
        pushed_at,
        languages,
        topics,
        labels,
        issues,
        owner,
        name,
    }
}

fn generate_issues(
    rng: &mut Rng,
    scale_k: u64,
    role: Role,
    repo_created: i64,
    beginner: &[usize],
    generic: &[usize],
) -> Vec<IssueMeta> {
    let n: u32 = match role {
        Role::Paginated => rng.range(130, 150) as u32,
        Role::Scale => {
            // Pairs average exactly 25, so N scale repos hold 25·N issues.
            let d = (crate::rng::mix(scale_k / 2) % 6) as u32;
            if scale_k.is_multiple_of(2) {
                25 + d
            } else {
                25 - d
            }
        }
        _ => {
            if rng.chance(0.08) {
                0
            } else {
                rng.range(5, 90) as u32
            }
        }
    };
    let first = (repo_created + 86_400).max(BASE_EPOCH - 900 * 86_400);
    let span = (BASE_EPOCH - 3_600 - first).max(n as i64 + 1);
    let step = span / (n as i64 + 1);
    let pick_generic = |rng: &mut Rng| -> u32 {
        let mut m = 0u32;
        if !generic.is_empty() {
            for _ in 0..rng.range(0, 2) {
                m |= 1 << generic[rng.below(generic.len() as u64) as usize];
            }
        }
        m
    };
    (1..=n)
        .map(|number| {
            let created = first + step * number as i64 + rng.below(step.max(1) as u64) as i64;
            let age = (BASE_EPOCH - created).max(1) as f64;
            let updated = created + (age * crate::rng::unit(rng.next_u64()).powi(2)) as i64;
            let (is_pr, closed, is_beginner) = match role {
                Role::Paginated => (number % 10 == 0, number % 13 == 0, number % 10 != 0),
                _ => (
                    rng.chance(0.06),
                    rng.chance(0.35),
                    !beginner.is_empty() && rng.chance(0.28),
                ),
            };
            let mut labels = pick_generic(rng);
            if is_beginner && !beginner.is_empty() {
                labels |= 1 << beginner[0];
                if beginner.len() > 1 && rng.chance(0.5) {
                    labels |= 1 << beginner[1];
                }
            }
            let mut flags = 0u8;
            if is_pr {
                flags |= FLAG_PR;
            }
            if rng.chance(0.03) {
                flags |= FLAG_EMPTY_BODY;
            }
            if rng.chance(0.01) {
                flags |= FLAG_LOCKED;
            }
            if closed && rng.chance(0.2) {
                flags |= FLAG_NOT_PLANNED;
            }
            let assignees = match rng.below(20) {
                0 => 2,
                1..=5 => 1,
                _ => 0,
            };
            let comments = if rng.chance(0.2) {
                rng.range(0, 40)
            } else {
                rng.range(0, 6)
            } as u16;
            IssueMeta {
                created: created as u32,
                updated: updated as u32,
                closed: if closed { updated as u32 } else { 0 },
                labels,
                comments,
                author: rng.below(prose::LOGIN_POOL) as u16,
                edits: 0,
                assignees,
                flags,
            }
        })
        .collect()
}

/// Ground truth about one repository, for tests to compare worker output with.
#[derive(Debug, Clone, Serialize)]
pub struct RepoTruth {
    pub listed_slug: String,
    pub name_with_owner: String,
    pub database_id: u64,
    /// `ok`, `missing`, `renamed` or `archived`.
    pub status: &'static str,
    pub listed: bool,
    pub listed_labels: Vec<String>,
    /// The first beginner label as the repository really names it.
    pub beginner_label: Option<String>,
    pub beginner_labels: Vec<String>,
    pub open_beginner_issues: Vec<u32>,
    /// Those of `open_beginner_issues` an open pull request will close.
    pub open_beginner_issues_with_open_pr: Vec<u32>,
    /// Those of `open_beginner_issues` with at least one assignee.
    pub open_beginner_issues_assigned: Vec<u32>,
    pub open_issues: usize,
    pub issues_and_pulls: usize,
}

impl World {
    pub(crate) fn truth_for(&self, repo: &Repo, listed: bool) -> RepoTruth {
        let status = if repo.deleted {
            "missing"
        } else if repo.renamed_from.is_some() {
            "renamed"
        } else if repo.archived {
            "archived"
        } else {
            "ok"
        };
        let beginner_labels: Vec<String> = if repo.deleted {
            Vec::new()
        } else {
            repo.labels
                .iter()
                .filter(|l| l.beginner)
                .map(|l| l.name.to_string())
                .collect()
        };
        let mask = repo.beginner_mask();
        let open_beginner_issues = if repo.deleted {
            Vec::new()
        } else {
            repo.issues
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_open() && !m.is_pr() && m.labels & mask != 0)
                .map(|(i, _)| i as u32 + 1)
                .collect()
        };
        let with_open_pr = open_beginner_issues
            .iter()
            .copied()
            .filter(|n| self.has_open_pr(repo, *n))
            .collect();
        let assigned = open_beginner_issues
            .iter()
            .copied()
            .filter(|n| !self.issue_assignees(repo.idx, *n).is_empty())
            .collect();
        RepoTruth {
            listed_slug: repo.listed_slug.clone(),
            name_with_owner: repo.name_with_owner(),
            database_id: repo.id,
            status,
            listed,
            listed_labels: repo.listed_labels.clone(),
            beginner_label: beginner_labels.first().cloned(),
            beginner_labels,
            open_beginner_issues,
            open_beginner_issues_with_open_pr: with_open_pr,
            open_beginner_issues_assigned: assigned,
            open_issues: repo
                .issues
                .iter()
                .filter(|m| m.is_open() && !m.is_pr())
                .count(),
            issues_and_pulls: repo.issues.len(),
        }
    }

    pub(crate) fn now_iso(&self) -> String {
        iso8601(self.clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(seed: u64) -> World {
        World::generate(seed, &AwesomeList::fixture())
    }

    #[test]
    fn every_listed_github_repo_exists_once() {
        let w = world(42);
        assert_eq!(w.repos.len(), 222);
    }

    #[test]
    fn same_seed_builds_the_same_world() {
        let (a, b) = (world(9), world(9));
        assert_eq!(a.specials.missing, b.specials.missing);
        for (x, y) in a.repos.iter().zip(&b.repos) {
            assert_eq!(x.issues.len(), y.issues.len());
            assert_eq!(x.labels.len(), y.labels.len());
        }
        assert_ne!(world(10).specials.missing, a.specials.missing);
    }

    #[test]
    fn specials_have_the_documented_counts() {
        let w = world(42);
        let s = &w.specials;
        assert_eq!(s.missing.len(), 3);
        assert_eq!(s.renamed.len(), 1);
        assert_eq!(s.archived.len(), 3);
        assert_eq!(s.label_missing.len(), 1);
        assert_eq!(s.paginated.len(), 4);
        assert_eq!(s.label_case_differs.len(), 3);
        assert!(!s.label_hyphen_resolved.is_empty());
    }

    #[test]
    fn every_seed_gets_the_full_set_of_special_repos() {
        let list = AwesomeList::fixture();
        for seed in 0..12 {
            let w = World::generate(seed, &list);
            let s = &w.specials;
            assert_eq!(
                (s.missing.len(), s.renamed.len(), s.archived.len()),
                (3, 1, 3),
                "seed {seed}"
            );
            assert_eq!(s.label_missing.len(), 1, "seed {seed}");
            assert_eq!(s.paginated.len(), 4, "seed {seed}");
            assert_eq!(s.label_case_differs.len(), 3, "seed {seed}");
            for r in w.repos.iter().filter(|r| r.role == Role::Paginated) {
                let open = w.truth_for(r, true).open_beginner_issues.len();
                assert!((101..=150).contains(&open), "seed {seed}: {open}");
            }
        }
    }

    #[test]
    fn paginated_repos_force_a_second_page_of_beginner_issues() {
        let w = world(42);
        for r in w.repos.iter().filter(|r| r.role == Role::Paginated) {
            let t = w.truth_for(r, true);
            assert!(t.open_beginner_issues.len() > 100, "{}", r.listed_slug);
            assert!(r.issues.len() <= 150);
        }
    }

    #[test]
    fn average_open_beginner_issues_is_modest() {
        let w = world(42);
        let normal: Vec<usize> = w
            .repos
            .iter()
            .filter(|r| r.role == Role::Normal && !r.deleted)
            .map(|r| w.truth_for(r, true).open_beginner_issues.len())
            .collect();
        let avg = normal.iter().sum::<usize>() as f64 / normal.len() as f64;
        assert!((5.0..=11.0).contains(&avg), "average {avg}");
    }

    #[test]
    fn hyphenated_listed_labels_resolve_to_spaced_labels() {
        let w = world(42);
        let r = w
            .repos
            .iter()
            .find(|r| r.listed_labels == ["help-wanted"] && r.role == Role::Normal)
            .expect("the list has help-wanted entries");
        assert!(r
            .labels
            .iter()
            .any(|l| l.beginner && l.name == "help wanted"));
        assert!(!r.labels.iter().any(|l| l.name == "help-wanted"));
    }

    #[test]
    fn label_missing_repo_has_no_variant_of_its_listed_label() {
        let w = world(42);
        let r = w
            .repos
            .iter()
            .find(|r| r.role == Role::LabelMissing)
            .unwrap();
        let listed = loose_label(&r.listed_labels[0]);
        assert!(r.labels.iter().all(|l| loose_label(&l.name) != listed));
        assert!(w.truth_for(r, true).beginner_label.is_none());
    }

    #[test]
    fn renamed_repo_resolves_by_both_names() {
        let w = world(42);
        let r = w.repos.iter().find(|r| r.renamed_from.is_some()).unwrap();
        let (o, n) = split_slug(&r.listed_slug);
        assert_eq!(w.lookup(&o, &n), Lookup::Former(r.idx));
        assert_eq!(w.lookup(&r.owner, &r.name), Lookup::Current(r.idx));
    }

    #[test]
    fn comma_joined_listed_label_gives_both_labels() {
        let w = world(42);
        let r = w
            .repos
            .iter()
            .find(|r| r.listed_slug == "mattermost/mattermost")
            .unwrap();
        if r.role == Role::Normal {
            let names: Vec<&str> = r
                .labels
                .iter()
                .filter(|l| l.beginner)
                .map(|l| l.name.as_ref())
                .collect();
            assert_eq!(names, ["Good First Issue", "Difficulty/1:Easy"]);
        }
    }

    #[test]
    fn ten_thousand_scale_repos_are_generated() {
        // How fast is measured by the benchmark, not asserted here.
        let mut list = AwesomeList::fixture();
        let techs = list.technology_names();
        for e in scale_entries(10_000, &techs) {
            list.push(e);
        }
        let w = World::generate(1, &list);
        assert_eq!(w.repos.len(), 10_222);
    }

    #[test]
    fn scale_repos_hold_exactly_twenty_five_issues_on_average() {
        let mut list = AwesomeList::fixture();
        let techs = list.technology_names();
        for e in scale_entries(1000, &techs) {
            list.push(e);
        }
        let w = World::generate(1, &list);
        let scale: usize = w
            .repos
            .iter()
            .filter(|r| r.role == Role::Scale)
            .map(|r| r.issues.len())
            .sum();
        assert_eq!(scale, 25_000);
    }
}
