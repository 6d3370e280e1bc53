//! The external programs the kit runs, and a clear panic when one is missing.

use std::path::PathBuf;

/// An external program and the Debian package that ships it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The program's name, looked up on `PATH`.
    pub program: &'static str,
    /// The Debian package to install when it is missing.
    pub package: &'static str,
}

/// CNCF distribution 2.8, `docker-registry serve config.yml`.
pub const DOCKER_REGISTRY: Tool = Tool {
    program: "docker-registry",
    package: "docker-registry",
};
/// `skopeo copy`, to push images the way real clients do.
pub const SKOPEO: Tool = Tool {
    program: "skopeo",
    package: "skopeo",
};
/// `htpasswd -B`, for the bcrypt password file of Basic auth.
pub const HTPASSWD: Tool = Tool {
    program: "htpasswd",
    package: "apache2-utils",
};
/// `openssl req -x509`, for the token issuer's certificate and the TLS tests' authorities.
pub const OPENSSL: Tool = Tool {
    program: "openssl",
    package: "openssl",
};

/// `curl`, an HTTP client that says which protocol version it spoke (`%{http_version}`).
pub const CURL: Tool = Tool {
    program: "curl",
    package: "curl",
};

/// `redis-server`, the coordination store of several gateways.
pub const REDIS_SERVER: Tool = Tool {
    program: "redis-server",
    package: "redis-server",
};

/// `podman push`, as users push (daemonless, `--storage-driver vfs`).
pub const PODMAN: Tool = Tool {
    program: "podman",
    package: "podman",
};

/// `buildah push`, as image builds push (daemonless, `--storage-driver vfs`).
pub const BUILDAH: Tool = Tool {
    program: "buildah",
    package: "buildah",
};

/// The Docker engine, run by the kit as a [`DockerDaemon`](crate::DockerDaemon) (needs root).
pub const DOCKERD: Tool = Tool {
    program: "dockerd",
    package: "docker.io",
};

/// The Docker client (`docker push`, `docker build`, `docker run`), pointed at a
/// [`DockerDaemon`](crate::DockerDaemon).
pub const DOCKER: Tool = Tool {
    program: "docker",
    package: "docker.io",
};

/// Where Debian installs daemons, which a non-root user's `PATH` often leaves out.
const SYSTEM_DIRS: [&str; 2] = ["/usr/sbin", "/sbin"];

impl Tool {
    /// The program's path: the first on `PATH`, else in `/usr/sbin` or `/sbin`.
    ///
    /// # Panics
    /// When the program is not found, naming the package to install. Tests never skip.
    pub fn require(&self) -> PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
            .map(|dir| dir.join(self.program))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "testkit needs `{}`, which is not on PATH nor in /usr/sbin: install the \
                     Debian package `{}` (apt-get install {})",
                    self.program, self.package, self.package
                )
            })
    }
}
