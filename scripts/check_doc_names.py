#!/usr/bin/env python3
"""Every name docs/architecture.md puts in a code span exists in the source.

The architecture document names modules, types, functions, files, flags and configuration
keys; when the code moves, the document must move with it. This check reads every code span
(`...`) of the given documents and sorts it:

* a path (holds `/` or ends in `.rs`, `.sh`, `.yaml`): the file or folder exists, relative to
  the repository or to a crate's `src/`;
* a flag (`--name`): a field `name` (dashes as underscores) or the literal `--name` exists in
  the sources;
* a Rust path or name (`Gateway::new`, `relay::splice`, `requested_tags`, `tags(repo, auth)`):
  every segment is defined in the sources (`.rs` files of crates/, benches/ and fuzz/) as an
  item (`fn`, `struct`, `enum`, `trait`, `type`, `const`, `static`, `mod`), a field, an enum
  variant, a file or a folder;
* anything else (HTTP methods and statuses, YAML values, messages, shell commands, names of
  other projects): not checked. Names of other projects that look like Rust names are listed
  in EXTERNAL below.

Prints each missing name with its line and exits 1 when there is one.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Names from other projects (the standard library, tokio, hyper, distribution, tools) that a
# document may mention as they are.
EXTERNAL = {
    "splice", "epoll_wait", "sendfile", "url", "ParseQuery", "tokio", "sync", "watch",
    "RegexSet", "Display", "hyper", "httparse", "rustls", "reqwest", "std", "io", "Error",
    "skopeo", "podman", "buildah", "docker", "umoci", "kubectl", "kustomize", "redis",
    "nginx", "gorilla", "mux", "testkit", "SET", "NX", "PX", "EVAL", "EVALSHA", "INCR",
    "Lua", "SIGHUP", "SIGTERM", "SIGKILL", "unlimited", "true", "false", "http", "Uri",
    "redis", "ConnectionManager",
}

SPAN = re.compile(r"`([^`\n]+)`")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RUST_NAME = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*(\(\)|\([A-Za-z0-9_, &]*\))?$"
)
PATH = re.compile(r"^[A-Za-z0-9_./-]+$")


DEFINITION = re.compile(
    r"\b(?:fn|struct|enum|trait|type|const|static|mod|union)\s+(?:r#)?([A-Za-z_][A-Za-z0-9_]*)"
    r"|^\s*(?:pub(?:\([a-z]+\))?\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*:[^:]"  # a field
    r"|^\s*([A-Z][A-Za-z0-9_]*)\s*(?:[({,]|$)",  # an enum variant
    re.MULTILINE,
)


def source_words():
    """The names the sources define: items, fields, variants, files and folders."""
    words = set()
    for folder in ("crates", "benches", "fuzz"):
        for path in (ROOT / folder).rglob("*.rs"):
            if "target" in path.parts:
                continue
            for match in DEFINITION.finditer(path.read_text(errors="replace")):
                words.update(name for name in match.groups() if name)
            words.add(path.stem)
        for manifest in (ROOT / folder).rglob("Cargo.toml"):
            words.add(manifest.parent.name.replace("-", "_"))  # a crate's name in Rust paths
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() and "target" not in path.parts:
                words.add(path.name)
    return words


TOP = ("crates/", "docs/", "scripts/", "deploy/", "benches/", "fuzz/", ".ci/", "relay/",
       "coordination/", "report/", "migration/", "components/", "overlays/", "base/")


def is_file_path(span):
    """A span that names a file or folder of the repository, not a repository name or a ratio."""
    return bool(re.search(r"\.(rs|sh|py|yaml|toml|md)$", span)) or span.startswith(TOP)


def path_exists(span):
    """The path exists relative to the repository, or ends some path of it (`tags.rs`,
    `relay/splice.rs`, `components/redis`)."""
    if (ROOT / span).exists():
        return True
    suffix = "/" + span
    for path in ROOT.rglob(pathlib.Path(span).name):
        if "target" in path.parts or ".git" in path.parts:
            continue
        if str(path).endswith(suffix):
            return True
    return False


def check(document, words, sources):
    missing = []
    for number, line in enumerate(document.read_text().splitlines(), start=1):
        for span in SPAN.findall(line):
            span = span.strip()
            if span.startswith("--"):
                flag = span.split("=", 1)[0].split(" ", 1)[0]
                if not re.fullmatch(r"--[a-z0-9-]+", flag):
                    continue
                field = flag[2:].replace("-", "_")
                if field not in words and flag not in sources:
                    missing.append((number, span))
                continue
            if PATH.match(span) and ("/" in span or "." in span):
                if is_file_path(span) and not path_exists(span.rstrip("/")):
                    missing.append((number, span))
                continue
            if not RUST_NAME.match(span):
                continue
            if span.isupper() or span.isdigit():
                continue  # GET, HEAD, DENIED
            segments = span.split("(", 1)[0].split("::")
            if len(segments) == 1:
                # One word: a name the sources define, or any word they hold (a header, a
                # configuration value, a metric built from parts).
                name = segments[0]
                metric = name.removeprefix("registry_gateway_")
                for suffix in ("_total", "_seconds", "_bytes"):
                    metric = metric.removesuffix(suffix)
                if not (
                    name in words
                    or name in EXTERNAL
                    or re.search(r"\b" + re.escape(name) + r"\b", sources)
                    or (name.startswith(("registry_gateway_", "_")) and metric.strip("_") in sources)
                ):
                    missing.append((number, span))
                continue
            # A path: each segment is defined.
            if any(seg not in words and seg not in EXTERNAL for seg in segments):
                missing.append((number, span))
    return missing


def main():
    documents = [ROOT / arg for arg in sys.argv[1:]] or [ROOT / "docs" / "architecture.md"]
    words = source_words()
    sources = "\n".join(
        p.read_text(errors="replace")
        for p in (ROOT / "crates").rglob("*.rs")
        if "target" not in p.parts
    )
    failed = False
    for document in documents:
        for number, span in check(document, words, sources):
            print(f"{document.relative_to(ROOT)}:{number}: `{span}` names nothing in the source")
            failed = True
    if failed:
        sys.exit(1)
    print("every name in " + ", ".join(str(d.relative_to(ROOT)) for d in documents) + " exists")


if __name__ == "__main__":
    main()
