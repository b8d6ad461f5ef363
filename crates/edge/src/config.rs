//! Worker configuration: vars and secrets, read once per invocation.

use worker::Env;

/// A var or secret, trimmed; `None` when unset or empty.
pub fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A var with a default.
pub fn var_or(env: &Env, name: &str, default: &str) -> String {
    var(env, name).unwrap_or_else(|| default.to_string())
}

/// A numeric var with a default.
pub fn number_or<T: std::str::FromStr>(env: &Env, name: &str, default: T) -> T {
    var(env, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every configured secret value, for log redaction.
pub fn secret_values(env: &Env, names: &[&str]) -> Vec<String> {
    names.iter().filter_map(|n| var(env, n)).collect()
}
