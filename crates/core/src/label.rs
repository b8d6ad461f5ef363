//! Label resolution: from the label a list entry names to the label the
//! repository really has.
//!
//! The awesome-for-beginners list spells labels loosely: `help-wanted` where
//! the repository has `help wanted`, `Good-first-issue`, emoji prefixes
//! (`👶 Good first issue`) and emoji shortcodes (`good first issue-:wave:`).
//! GitHub's issue filter needs the exact label text, so [`resolve_label`]
//! matches the listed labels against the repository's labels, most exact
//! match first, and returns the repository's spelling.

/// Canonical comparison form of a label.
///
/// Lowercases; strips emoji, `:shortcode:` tokens and any other
/// non-alphanumeric characters from both ends; turns every run of spaces,
/// hyphens and underscores in the middle into one space. Punctuation in the
/// middle (`/`, `:`, `.`) stays, so `difficulty/easy` and `difficulty easy`
/// remain different. A label made only of emoji or punctuation normalises to
/// the empty string.
///
/// ```
/// use contribot_core::label::normalize_label;
/// assert_eq!(normalize_label("👶 Good_first--issue"), "good first issue");
/// assert_eq!(normalize_label("good first issue-:wave:"), "good first issue");
/// assert_eq!(normalize_label("Type:-Jump-In"), "type: jump in");
/// ```
pub fn normalize_label(s: &str) -> String {
    let lower = s.to_lowercase();
    let core = trim_decorations(&lower);
    let mut out = String::with_capacity(core.len());
    let mut pending_space = false;
    for c in core.chars() {
        if c.is_whitespace() || c == '-' || c == '_' {
            pending_space = true;
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// Strips emoji, `:shortcode:` tokens and other non-alphanumeric characters
/// from both ends until the text starts and ends with a letter or digit.
fn trim_decorations(s: &str) -> &str {
    let mut rest = s;
    loop {
        let before = rest.len();
        rest = strip_trailing_shortcode(rest).unwrap_or(rest);
        rest = strip_leading_shortcode(rest).unwrap_or(rest);
        rest = rest.trim_matches(|c: char| !c.is_alphanumeric());
        if rest.len() == before {
            return rest;
        }
    }
}

/// Characters GitHub (and gemoji) use in `:shortcode:` names.
fn is_shortcode_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-')
}

/// `good first issue :wave:` → `good first issue `.
fn strip_trailing_shortcode(s: &str) -> Option<&str> {
    let inner = s.strip_suffix(':')?;
    let start = inner.rfind(':')?;
    let name = inner.get(start + 1..)?;
    if name.is_empty() || !name.chars().all(is_shortcode_char) {
        return None;
    }
    inner.get(..start)
}

/// `:rocket: good first issue` → ` good first issue`.
fn strip_leading_shortcode(s: &str) -> Option<&str> {
    let inner = s.strip_prefix(':')?;
    let end = inner.find(':')?;
    let name = inner.get(..end)?;
    if name.is_empty() || !name.chars().all(is_shortcode_char) {
        return None;
    }
    inner.get(end + 1..)
}

/// How a repository's label was found for a list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelResolution {
    /// A listed label exists on the repository verbatim.
    Exact(String),
    /// A listed label matches a repository label only ignoring case, or
    /// after [`normalize_label`] on both sides. `actual` is the repository's
    /// spelling, the one to filter issues by.
    Normalized {
        /// The label as the list spells it.
        listed: String,
        /// The label as the repository spells it.
        actual: String,
    },
    /// No listed label matches any repository label (or none was listed).
    NotFound {
        /// The labels the list gave, for the operator's log.
        listed: Vec<String>,
    },
}

impl LabelResolution {
    /// The repository's label to filter issues by, if one was found.
    pub fn label(&self) -> Option<&str> {
        match self {
            Self::Exact(actual) | Self::Normalized { actual, .. } => Some(actual),
            Self::NotFound { .. } => None,
        }
    }

    /// Whether a repository label was found.
    pub fn is_found(&self) -> bool {
        self.label().is_some()
    }
}

/// Finds the repository label that the list's labels refer to.
///
/// The listed labels are tried in order, and the first that resolves wins.
/// For each, a case-sensitive exact match comes first, then a match ignoring
/// case, then a match after [`normalize_label`] on both sides (a listed label
/// that normalises to nothing, such as a lone emoji, never matches this way).
/// Within one tier the first repository label in `repo_labels` order wins.
/// Blank listed labels are ignored.
pub fn resolve_label(listed: &[String], repo_labels: &[String]) -> LabelResolution {
    for wanted in listed {
        if wanted.trim().is_empty() {
            continue;
        }
        if let Some(actual) = repo_labels.iter().find(|l| *l == wanted) {
            return LabelResolution::Exact(actual.clone());
        }
        let wanted_lower = wanted.to_lowercase();
        let by_case = repo_labels
            .iter()
            .find(|l| l.to_lowercase() == wanted_lower);
        let by_form = || {
            let wanted_form = normalize_label(wanted);
            if wanted_form.is_empty() {
                return None;
            }
            repo_labels
                .iter()
                .find(|l| normalize_label(l) == wanted_form)
        };
        if let Some(actual) = by_case.or_else(by_form) {
            return LabelResolution::Normalized {
                listed: wanted.clone(),
                actual: actual.clone(),
            };
        }
    }
    LabelResolution::NotFound {
        listed: listed.to_vec(),
    }
}

/// A short query for GitHub's label search (`labels(query:)`, which matches
/// substrings of label names and descriptions): the longest alphanumeric
/// word of the normalised label, the first one on a tie.
///
/// `help-wanted` → `wanted`, `good first issue` → `first`,
/// `👶 Good first issue` → `first`, empty or emoji-only input → `""`.
pub fn label_search_term(listed: &str) -> String {
    let normalized = normalize_label(listed);
    let mut best = "";
    for word in normalized.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().count() > best.chars().count() {
            best = word;
        }
    }
    best.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcodes_are_stripped_only_at_the_ends() {
        assert_eq!(normalize_label(":star: easy :1st_place_medal:"), "easy");
        assert_eq!(normalize_label("area:parser:easy"), "area:parser:easy");
        assert_eq!(normalize_label("difficulty::easy"), "difficulty::easy");
        assert_eq!(normalize_label("🤩🤩"), "");
    }
}
