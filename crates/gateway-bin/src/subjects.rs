//! The cache of signature subjects already read from the registry, by repository and digest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use limits_core::{RepositoryName, Subject};

/// How long a digest the registry does not hold is remembered as absent.
const ABSENT_FOR: Duration = Duration::from_secs(30);

/// Subjects already read, by repository and digest; bounded.
#[derive(Debug)]
pub struct Subjects {
    capacity: usize,
    known: Mutex<HashMap<(RepositoryName, String), (Subject, Instant)>>,
}

impl Subjects {
    /// A cache of at most `capacity` subjects.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            known: Mutex::new(HashMap::new()),
        }
    }

    fn known(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(RepositoryName, String), (Subject, Instant)>> {
        match self.known.lock() {
            Ok(known) => known,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn get(&self, repository: &RepositoryName, digest: &str) -> Option<Subject> {
        let key = (repository.clone(), digest.to_owned());
        let (subject, at) = *self.known().get(&key)?;
        (subject != Subject::Absent || at.elapsed() < ABSENT_FOR).then_some(subject)
    }

    pub(crate) fn insert(&self, repository: &RepositoryName, digest: &str, subject: Subject) {
        if self.capacity == 0 {
            return;
        }
        let mut known = self.known();
        if known.len() >= self.capacity {
            // Rarely reached; starting over costs one read per subject.
            known.clear();
        }
        known.insert(
            (repository.clone(), digest.to_owned()),
            (subject, Instant::now()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_subjects_stay_absent_ones_expire() {
        let subjects = Subjects::new(2);
        let repository: RepositoryName = "a/b".parse().expect("name");
        subjects.insert(&repository, "sha256:1", Subject::Image);
        subjects.insert(&repository, "sha256:2", Subject::Absent);
        assert_eq!(subjects.get(&repository, "sha256:1"), Some(Subject::Image));
        assert_eq!(subjects.get(&repository, "sha256:2"), Some(Subject::Absent));
        let other: RepositoryName = "a/c".parse().expect("name");
        assert_eq!(subjects.get(&other, "sha256:1"), None);
        // Full: starts over.
        subjects.insert(&repository, "sha256:3", Subject::Attached);
        assert_eq!(subjects.get(&repository, "sha256:1"), None);
        assert_eq!(
            subjects.get(&repository, "sha256:3"),
            Some(Subject::Attached)
        );
    }
}
