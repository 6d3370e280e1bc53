#!/usr/bin/env bash
# Lays out the root filesystem of the registry-gateway container image:
#
#   scripts/image-rootfs.sh BINARY DEST
#
# DEST receives, and nothing else (no shell, no package manager):
#   /usr/local/bin/registry-gateway       BINARY
#   /lib64/ld-linux-x86-64.so.2, /lib/... the dynamic loader and the shared libraries BINARY
#                                         links to (libc, libm, libgcc_s), as ldd lists them,
#                                         copied from the machine that built BINARY, so they
#                                         are the glibc it was linked against; none for a
#                                         static binary
#   /etc/ssl/certs/ca-certificates.crt    the CA bundle: https upstreams and Harbor's external
#                                         URL are verified against it (rustls-native-certs
#                                         reads this path, or SSL_CERT_FILE)
#   /etc/nsswitch.conf                    host names from /etc/hosts (which Docker and
#                                         Kubernetes write: --add-host, hostAliases), then
#                                         DNS; glibc 2.34+ has both lookups built in
#   /etc/passwd, /etc/group               root and registry-gateway (uid/gid 65532)
#
# The Containerfile's build stage runs it on the binary it compiles; scripts/build-image.sh
# runs it on a binary built on this machine. Both images are FROM scratch plus this tree.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BINARY DEST" >&2
    exit 2
fi
binary=$1
dest=$2
ca_bundle=/etc/ssl/certs/ca-certificates.crt

[ -x "$binary" ] || { echo "error: $binary is not an executable" >&2; exit 1; }
[ -f "$ca_bundle" ] || { echo "error: no $ca_bundle here: apt-get install ca-certificates" >&2; exit 1; }

install -D -m 0755 "$binary" "$dest/usr/local/bin/registry-gateway"

# ldd prints `name => /path (address)` per library, `/path (address)` for the loader,
# `name => not found` for a library it cannot find, and `statically linked` for a static binary.
libraries=$(ldd "$binary" 2>&1) || true
if grep -q 'not found' <<<"$libraries"; then
    echo "error: $binary needs libraries this machine does not have:" >&2
    echo "$libraries" >&2
    exit 1
fi
while read -r library; do
    # Copied as files at the paths the binary and the loader look for (through symlinks such
    # as /lib64 -> usr/lib64 on merged-/usr systems).
    install -D -m 0755 "$(readlink -f "$library")" "$dest$library"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$libraries")

install -D -m 0644 "$ca_bundle" "$dest$ca_bundle"
install -d -m 0755 "$dest/etc"
cat >"$dest/etc/nsswitch.conf" <<'EOF'
passwd: files
group:  files
hosts:  files dns
EOF
cat >"$dest/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
registry-gateway:x:65532:65532:registry-gateway:/nonexistent:/sbin/nologin
EOF
cat >"$dest/etc/group" <<'EOF'
root:x:0:
registry-gateway:x:65532:
EOF
chmod 0644 "$dest/etc/nsswitch.conf" "$dest/etc/passwd" "$dest/etc/group"
