//! What the inventory keeps together: a namespace (`team-a` for `team-a/app` and
//! `team-a/tools/app`), or a repository without a namespace (no `/` in its name), kept alone
//! under `/<name>`, which no namespace can be, so that its images are counted for
//! `image_count_limit` as a namespaced repository's are.

use limits_core::namespace_of;

/// The scope `repository` is kept in: its namespace, or `/<repository>`.
pub fn scope_of(repository: &str) -> String {
    match namespace_of(repository) {
        Some(namespace) => namespace.to_owned(),
        None => format!("/{repository}"),
    }
}

/// The repository a scope of one repository holds; `None` for a namespace.
pub fn lone_repository(scope: &str) -> Option<&str> {
    scope.strip_prefix('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        for (repository, scope, lone) in [
            ("team-a/app", "team-a", None),
            ("team-a/tools/app", "team-a", None),
            ("nginx", "/nginx", Some("nginx")),
        ] {
            assert_eq!(scope_of(repository), scope);
            assert_eq!(lone_repository(&scope_of(repository)), lone);
        }
    }
}
