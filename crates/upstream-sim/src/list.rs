//! The awesome-for-beginners list: the embedded snapshot, link normalisation,
//! the README renderer (the list's real current format) and the deliberate
//! breakages the control API can apply.

use serde::{Deserialize, Serialize};

use crate::rng::{hash_str, Rng};

pub(crate) const FIXTURE_DATA: &str =
    include_str!("../../../fixtures/awesome-for-beginners/data.json");
pub(crate) const FIXTURE_README: &str =
    include_str!("../../../fixtures/awesome-for-beginners/README.md");

/// The only list the raw stand-in serves: `MunGell/awesome-for-beginners`.
pub(crate) const LIST_OWNER: &str = "MunGell";
pub(crate) const LIST_REPO: &str = "awesome-for-beginners";
pub(crate) const LIST_BRANCH: &str = "main";

/// One entry of `data.json` under `repositories`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListEntry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default)]
    pub technologies: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A way to break the served list, for testing the scraper's robustness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListBreak {
    /// `data.json` is cut off mid-document.
    InvalidJson,
    /// One entry has no `link` at all.
    EntryWithoutLink,
    /// One entry's description is about a mebibyte long.
    HugeDescription,
    /// Entries on GitLab, Codeberg, Bitbucket, a look-alike host and a
    /// GitHub profile link with no repository.
    NonGithubHosts,
}

#[derive(Debug, Deserialize)]
struct FixtureDoc {
    sponsors: serde_json::Value,
    technologies: serde_json::Value,
    repositories: Vec<ListEntry>,
}

#[derive(Serialize)]
struct DataJson<'a> {
    sponsors: &'a serde_json::Value,
    technologies: &'a serde_json::Value,
    repositories: &'a [ListEntry],
}

/// The served list: entries plus the bits of the document around them.
#[derive(Debug, Clone)]
pub(crate) struct AwesomeList {
    sponsors: serde_json::Value,
    technologies: serde_json::Value,
    pub(crate) entries: Vec<ListEntry>,
    invalid_json: bool,
    /// True while the list is byte-for-byte the fixture.
    pristine: bool,
}

impl AwesomeList {
    /// The embedded snapshot, unmodified.
    pub(crate) fn fixture() -> Self {
        let doc: FixtureDoc =
            serde_json::from_str(FIXTURE_DATA).expect("embedded data.json is valid");
        AwesomeList {
            sponsors: doc.sponsors,
            technologies: doc.technologies,
            entries: doc.repositories,
            invalid_json: false,
            pristine: true,
        }
    }

    /// Technology headings used by the fixture, for spreading synthetic entries.
    pub(crate) fn technology_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .iter()
            .flat_map(|e| e.technologies.iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub(crate) fn push(&mut self, entry: ListEntry) {
        self.entries.push(entry);
        self.pristine = false;
    }

    /// Removes entries whose link normalises to `link`'s; returns how many.
    pub(crate) fn remove_link(&mut self, link: &str) -> usize {
        let target = normalise_link(link);
        let before = self.entries.len();
        self.entries
            .retain(|e| e.link.as_deref().map(normalise_link) != Some(target.clone()));
        let removed = before - self.entries.len();
        if removed > 0 {
            self.pristine = false;
        }
        removed
    }

    pub(crate) fn apply_break(&mut self, mode: ListBreak, seed: u64) {
        self.pristine = false;
        match mode {
            ListBreak::InvalidJson => self.invalid_json = true,
            ListBreak::EntryWithoutLink => self.entries.push(ListEntry {
                name: "Linkless Project".into(),
                link: None,
                label: Some("good first issue".into()),
                technologies: vec!["Python".into()],
                description: "An entry whose link went missing in a bad merge.".into(),
            }),
            ListBreak::HugeDescription => {
                let filler = "This description keeps going and going, far beyond anything a list \
                              entry should hold. ";
                let mut description = String::with_capacity(1 << 20);
                while description.len() < (1 << 20) {
                    description.push_str(filler);
                }
                let mut rng = Rng::new(seed ^ hash_str("huge_description"));
                let github: Vec<usize> = (0..self.entries.len())
                    .filter(|&i| {
                        self.entries[i]
                            .link
                            .as_deref()
                            .and_then(github_slug)
                            .is_some()
                    })
                    .collect();
                if let Some(&i) = github.get(rng.below(github.len().max(1) as u64) as usize) {
                    self.entries[i].description = description;
                }
            }
            ListBreak::NonGithubHosts => {
                let odd = [
                    ("Codeberg Forge", "https://codeberg.org/forgejo/forgejo"),
                    (
                        "Bitbucket Thing",
                        "https://bitbucket.org/atlassian/python-bitbucket",
                    ),
                    (
                        "GitLab Runner",
                        "https://gitlab.com/gitlab-org/gitlab-runner",
                    ),
                    (
                        "Look-alike Host",
                        "https://github.com.example.org/evil/repo",
                    ),
                    ("Profile Only", "https://github.com/octocat"),
                    ("Sourcehut Tool", "https://git.sr.ht/~sircmpwn/scdoc"),
                ];
                for (name, link) in odd {
                    self.entries.push(ListEntry {
                        name: name.into(),
                        link: Some(link.into()),
                        label: Some("good first issue".into()),
                        technologies: vec!["Go".into()],
                        description: format!("{name} lives somewhere other than a GitHub repo."),
                    });
                }
            }
        }
    }

    /// `data.json` as served.
    pub(crate) fn data_json(&self) -> String {
        if self.pristine {
            return FIXTURE_DATA.to_string();
        }
        let doc = DataJson {
            sponsors: &self.sponsors,
            technologies: &self.technologies,
            repositories: &self.entries,
        };
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        doc.serialize(&mut ser).expect("list serialises");
        let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
        text.push('\n');
        if self.invalid_json {
            let mut cut = text.len() * 3 / 5;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(",\n        {\"name\": \"Unterminated");
        }
        text
    }

    /// `README.md` as served: the fixture verbatim while pristine, otherwise
    /// regenerated from the current entries in the list's own format.
    pub(crate) fn readme(&self) -> String {
        if self.pristine {
            return FIXTURE_README.to_string();
        }
        render_readme(&self.entries, &self.technologies)
    }
}

fn render_readme(entries: &[ListEntry], anchors: &serde_json::Value) -> String {
    let toc_at = FIXTURE_README
        .find("## Table of Contents:")
        .expect("fixture README has a table of contents");
    let tail_at = FIXTURE_README
        .find("## Contribute")
        .expect("fixture README has a Contribute section");
    let mut techs: Vec<(String, Vec<&ListEntry>)> = Vec::new();
    for e in entries {
        for t in &e.technologies {
            match techs.iter_mut().find(|(name, _)| name == t) {
                Some((_, list)) => list.push(e),
                None => techs.push((t.clone(), vec![e])),
            }
        }
    }
    techs.sort_by_key(|(name, _)| name.to_lowercase());
    let anchor = |t: &str| -> String {
        anchors
            .get(t)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| t.to_lowercase().replace(' ', "-"))
    };

    let mut out = String::with_capacity(FIXTURE_README.len() + entries.len() * 200);
    out.push_str(&FIXTURE_README[..toc_at]);
    out.push_str("## Table of Contents:\n\n||Languages|\n|--|--|\n");
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (t, _) in &techs {
        let first = t.chars().next().unwrap_or(' ');
        let key = if first.is_alphabetic() {
            first.to_uppercase().collect()
        } else {
            "Misc".to_string()
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(t),
            None => groups.push((key, vec![t])),
        }
    }
    for (key, list) in &groups {
        let links: Vec<String> = list
            .iter()
            .map(|t| format!("[{t}](#{})", anchor(t)))
            .collect();
        out.push_str(&format!("|{key}|{}|\n", links.join(", ")));
    }
    out.push('\n');
    for (t, list) in &mut techs {
        list.sort_by_key(|e| e.name.to_lowercase());
        out.push_str(&format!("## {t}\n\n"));
        for e in list.iter() {
            out.push_str(&format!(
                "- [{}]({}) _(label: {})_ <br> {}\n",
                e.name,
                e.link.as_deref().unwrap_or(""),
                e.label.as_deref().unwrap_or("n/a"),
                e.description
            ));
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&FIXTURE_README[tail_at..]);
    out
}

/// Lower-cases a link and strips the scheme, `www.`, a trailing `/` and `.git`.
fn normalise_link(link: &str) -> String {
    let l = link.trim().to_lowercase();
    let l = l
        .strip_prefix("https://")
        .or_else(|| l.strip_prefix("http://"))
        .unwrap_or(&l);
    let l = l.strip_prefix("www.").unwrap_or(l);
    let l = l.split(['?', '#']).next().unwrap_or("");
    let l = l.trim_end_matches('/');
    l.strip_suffix(".git").unwrap_or(l).to_string()
}

/// The lower-case `owner/name` of a GitHub repository link, or `None` for
/// other hosts and for links that don't name a repository.
pub fn github_slug(link: &str) -> Option<String> {
    let l = normalise_link(link);
    let path = l.strip_prefix("github.com/")?;
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let owner = parts.next()?;
    let name = parts.next()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    if owner.is_empty() || name.is_empty() {
        return None;
    }
    Some(format!("{owner}/{name}"))
}

/// The `owner/name` of a GitHub link in its original case.
pub(crate) fn github_path_original_case(link: &str) -> Option<(String, String)> {
    let l = link.trim();
    let lower = l.to_lowercase();
    let start = lower.find("github.com/")? + "github.com/".len();
    let path = l[start..].split(['?', '#']).next().unwrap_or("");
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let owner = parts.next()?;
    let name = parts.next()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    Some((owner.to_string(), name.to_string()))
}

/// Splits a listed label such as `"Good First Issue, Difficulty/1:Easy"`.
pub(crate) fn split_labels(label: Option<&str>) -> Vec<String> {
    label
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_has_the_documented_shape() {
        let list = AwesomeList::fixture();
        assert_eq!(list.entries.len(), 229);
        let mut slugs: Vec<String> = list
            .entries
            .iter()
            .filter_map(|e| e.link.as_deref().and_then(github_slug))
            .collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), 222);
    }

    #[test]
    fn github_links_normalise_to_lowercase_slugs() {
        assert_eq!(
            github_slug("https://github.com/mem0ai/mem0/"),
            Some("mem0ai/mem0".into())
        );
        assert_eq!(
            github_slug("http://www.GitHub.com/Foo/Bar.git"),
            Some("foo/bar".into())
        );
        assert_eq!(github_slug("https://gitlab.com/a/b"), None);
        assert_eq!(github_slug("https://github.com/octocat"), None);
        assert_eq!(github_slug("https://github.com.example.org/a/b"), None);
    }

    #[test]
    fn regenerated_readme_matches_the_fixture_byte_for_byte() {
        let list = AwesomeList::fixture();
        assert_eq!(
            render_readme(&list.entries, &list.technologies),
            FIXTURE_README
        );
    }

    #[test]
    fn invalid_json_break_serves_unparseable_data() {
        let mut list = AwesomeList::fixture();
        list.apply_break(ListBreak::InvalidJson, 1);
        assert!(serde_json::from_str::<serde_json::Value>(&list.data_json()).is_err());
    }

    #[test]
    fn comma_joined_labels_split() {
        assert_eq!(
            split_labels(Some("Good First Issue, Difficulty/1:Easy")),
            vec!["Good First Issue", "Difficulty/1:Easy"]
        );
    }
}
