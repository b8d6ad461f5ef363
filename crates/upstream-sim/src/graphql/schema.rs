//! GitHub's real GraphQL schema, parsed once per process and shared.

use std::sync::OnceLock;

use apollo_compiler::validation::Valid;
use apollo_compiler::Schema;

const SCHEMA_SDL: &str = include_str!("../../../../fixtures/github/schema.graphql");

static SCHEMA: OnceLock<Valid<Schema>> = OnceLock::new();

/// The parsed schema. The published SDL repeats two fields of
/// `EnterpriseOwnerInfo`; apollo-compiler keeps the first definition of each,
/// which is what GitHub serves, so the partial result is used as valid.
pub(crate) fn github_schema() -> &'static Valid<Schema> {
    SCHEMA.get_or_init(
        || match Schema::parse_and_validate(SCHEMA_SDL, "schema.graphql") {
            Ok(schema) => schema,
            Err(with_errors) => Valid::assume_valid(with_errors.partial),
        },
    )
}

/// Parses the schema now (once per process), so the first query doesn't
/// wait for it. `start` does this on a background thread.
pub fn warm_schema() {
    github_schema();
}

/// Starts parsing the schema on a background thread if nobody has yet.
pub(crate) fn warm_schema_in_background() {
    if SCHEMA.get().is_none() {
        std::thread::spawn(github_schema);
    }
}
