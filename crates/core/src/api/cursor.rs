//! Keyset cursors: the sort key of the last item of a page, so the next
//! page starts strictly after it and a row inserted meanwhile never shifts
//! or repeats one. Opaque to clients (hex of `kind|key…|id`), checked on
//! the way back in: a cursor that is not one this API issued, or that was
//! issued for another sort, is a 400 naming `cursor`.

use super::params::IssueSort;
use super::ApiError;

/// The longest cursor accepted, in characters.
pub const MAX_CURSOR_LEN: usize = 200;
/// The sort value of an issue with no difficulty yet: after every analysed one.
pub const UNRATED: u8 = 6;

/// Where the next page of issues starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCursor {
    pub sort: IssueSort,
    /// 1..=5, or [`UNRATED`]; only meaningful for [`IssueSort::Easy`].
    pub difficulty: u8,
    /// GitHub's creation time, as stored ('' when unknown).
    pub created: String,
    pub id: i64,
}

/// Where the next page of repos starts: stars (−1 when unknown), then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoCursor {
    pub stars: i64,
    pub id: i64,
}

fn foreign() -> ApiError {
    ApiError::bad(
        "cursor",
        "not a cursor from this API: pass a page's next_cursor back unchanged",
    )
}

/// The cursor's fields, split from its hex text.
fn fields(text: &str) -> Result<Vec<String>, ApiError> {
    if text.len() > MAX_CURSOR_LEN {
        return Err(foreign());
    }
    let bytes = hex::decode(text).map_err(|_| foreign())?;
    let plain = String::from_utf8(bytes).map_err(|_| foreign())?;
    Ok(plain.split('|').map(str::to_string).collect())
}

fn id_field(text: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 && !text.starts_with('+') => Ok(id),
        _ => Err(foreign()),
    }
}

/// A stored timestamp as it sorts: ISO-8601 characters only, or empty.
fn created_field(text: &str) -> Result<String, ApiError> {
    let ok = text.len() <= 40
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b'+' | b'T' | b'Z'));
    if ok {
        Ok(text.to_string())
    } else {
        Err(foreign())
    }
}

impl IssueCursor {
    pub fn encode(&self) -> String {
        let plain = match self.sort {
            IssueSort::Fresh => format!("f|{}|{}", self.created, self.id),
            IssueSort::Easy => format!("e|{}|{}|{}", self.difficulty, self.created, self.id),
        };
        hex::encode(plain)
    }

    /// Decode a cursor for a request sorted by `sort`.
    pub fn decode(text: &str, sort: IssueSort) -> Result<Self, ApiError> {
        let f = fields(text)?;
        let cursor = match (f[0].as_str(), f.len()) {
            ("f", 3) => IssueCursor {
                sort: IssueSort::Fresh,
                difficulty: UNRATED,
                created: created_field(&f[1])?,
                id: id_field(&f[2])?,
            },
            ("e", 4) => IssueCursor {
                sort: IssueSort::Easy,
                difficulty: match f[1].parse::<u8>() {
                    Ok(d) if (1..=UNRATED).contains(&d) && f[1].len() == 1 => d,
                    _ => return Err(foreign()),
                },
                created: created_field(&f[2])?,
                id: id_field(&f[3])?,
            },
            ("r", _) => {
                return Err(ApiError::bad(
                    "cursor",
                    "this cursor pages /api/repos, not issues",
                ))
            }
            _ => return Err(foreign()),
        };
        if cursor.sort != sort {
            return Err(ApiError::bad(
                "cursor",
                format!(
                    "issued for sort={}: pass the same sort with it",
                    cursor.sort.as_str()
                ),
            ));
        }
        Ok(cursor)
    }
}

impl RepoCursor {
    pub fn encode(&self) -> String {
        hex::encode(format!("r|{}|{}", self.stars, self.id))
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        let f = fields(text)?;
        match (f[0].as_str(), f.len()) {
            ("r", 3) => {
                let stars = match f[1].parse::<i64>() {
                    Ok(s) if s >= -1 && !f[1].starts_with('+') => s,
                    _ => return Err(foreign()),
                };
                Ok(RepoCursor {
                    stars,
                    id: id_field(&f[2])?,
                })
            }
            ("f" | "e", _) => Err(ApiError::bad(
                "cursor",
                "this cursor pages issues, not /api/repos",
            )),
            _ => Err(foreign()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(sort: IssueSort, difficulty: u8, created: &str, id: i64) -> IssueCursor {
        IssueCursor {
            sort,
            difficulty,
            created: created.to_string(),
            id,
        }
    }

    #[test]
    fn issue_cursors_round_trip_for_both_sorts() {
        for c in [
            issue(IssueSort::Fresh, UNRATED, "2025-06-01T12:00:00Z", 42),
            issue(IssueSort::Easy, 2, "2025-06-01T12:00:00Z", 7),
            issue(IssueSort::Easy, UNRATED, "", 1),
        ] {
            assert_eq!(IssueCursor::decode(&c.encode(), c.sort).unwrap(), c);
        }
        let r = RepoCursor { stars: -1, id: 9 };
        assert_eq!(RepoCursor::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn a_cursor_is_refused_under_another_sort() {
        let c = issue(IssueSort::Easy, 3, "2025-01-01T00:00:00Z", 5).encode();
        let err = IssueCursor::decode(&c, IssueSort::Fresh).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cursor: issued for sort=easy: pass the same sort with it"
        );
    }

    #[test]
    fn cursors_of_the_other_listing_are_refused() {
        let repo = RepoCursor { stars: 10, id: 3 }.encode();
        assert!(IssueCursor::decode(&repo, IssueSort::Fresh)
            .unwrap_err()
            .to_string()
            .contains("pages /api/repos"));
        let issues = issue(IssueSort::Fresh, UNRATED, "", 3).encode();
        assert!(RepoCursor::decode(&issues)
            .unwrap_err()
            .to_string()
            .contains("pages issues"));
    }

    #[test]
    fn tampered_cursors_are_refused_not_trusted() {
        let forged = [
            "zz".to_string(),
            "abc".to_string(),
            hex::encode("f|2025|0"),
            hex::encode("f|2025|-3"),
            hex::encode("f|2025'--|3"),
            hex::encode("f|2025|3|4"),
            hex::encode("e|7|2025|3"),
            hex::encode("e|01|2025|3"),
            hex::encode([0xff, 0xfe]),
            "a".repeat(MAX_CURSOR_LEN + 2),
        ];
        for text in forged {
            let err = IssueCursor::decode(&text, IssueSort::Fresh)
                .or_else(|_| IssueCursor::decode(&text, IssueSort::Easy))
                .unwrap_err();
            assert!(
                matches!(err, ApiError::BadParameter { ref parameter, .. } if parameter == "cursor"),
                "{text}: {err:?}"
            );
        }
    }
}
