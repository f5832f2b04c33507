//! Route rules: a method list and a path pattern naming the scope a request needs. In a pattern `*` stands for
//! any characters but `/` (one path segment or part of one) and `**` for any characters at all.

use serde::{Deserialize, Serialize};

/// `[[authz.routes]]`: e.g. `methods = ["GET"]`, `path = "/orders/**"`, `scope = "orders:read"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// HTTP methods (any case); empty or absent: every method.
    #[serde(default)]
    pub methods: Vec<String>,
    pub path: String,
    pub scope: String,
}

impl RouteRule {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path {:?} must start with /", self.path));
        }
        if self.scope.is_empty()
            || self.scope.len() > 128
            || self.scope.contains(char::is_whitespace)
        {
            return Err(format!(
                "scope {:?} must be 1-128 bytes without spaces",
                self.scope
            ));
        }
        if let Some(bad) = self
            .methods
            .iter()
            .find(|m| m.is_empty() || !m.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(format!("method {bad:?} is not an HTTP method"));
        }
        Ok(())
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && glob(self.path.as_bytes(), path.as_bytes())
    }
}

/// Matches `path` against `pattern` (`*`: no `/`; `**`: anything).
fn glob(pattern: &[u8], path: &[u8]) -> bool {
    match pattern {
        [] => path.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=path.len()).any(|skip| glob(rest, &path[skip..])),
        [b'*', rest @ ..] => {
            let segment = path.iter().position(|&c| c == b'/').unwrap_or(path.len());
            (0..=segment).any(|skip| glob(rest, &path[skip..]))
        }
        [c, rest @ ..] => path.first() == Some(c) && glob(rest, &path[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(methods: &[&str], path: &str) -> RouteRule {
        RouteRule {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            path: path.into(),
            scope: "s".into(),
        }
    }

    #[test]
    fn one_star_stays_within_a_segment_and_two_cross_them() {
        let one = rule(&[], "/orders/*");
        assert!(one.matches("GET", "/orders/17"));
        assert!(one.matches("GET", "/orders/"));
        assert!(!one.matches("GET", "/orders/17/items"));
        assert!(!one.matches("GET", "/orders"));
        let two = rule(&[], "/orders/**");
        assert!(two.matches("GET", "/orders/17/items"));
        assert!(!two.matches("GET", "/ordersx/1"));
        let middle = rule(&[], "/v*/orders/*/items");
        assert!(middle.matches("GET", "/v2/orders/9/items"));
        assert!(!middle.matches("GET", "/v2/x/orders/9/items"));
        assert!(rule(&[], "/health").matches("GET", "/health"));
        assert!(!rule(&[], "/health").matches("GET", "/healthz"));
    }

    #[test]
    fn methods_match_in_any_case_and_empty_means_all() {
        let get = rule(&["GET", "head"], "/**");
        assert!(get.matches("get", "/a"));
        assert!(get.matches("HEAD", "/a"));
        assert!(!get.matches("POST", "/a"));
        assert!(rule(&[], "/**").matches("DELETE", "/a"));
    }

    #[test]
    fn bad_rules_are_named() {
        assert!(rule(&[], "orders").validate().is_err());
        assert!(rule(&["GE T"], "/x").validate().is_err());
        let mut no_scope = rule(&[], "/x");
        no_scope.scope = String::new();
        assert!(no_scope.validate().is_err());
    }
}
