#!/usr/bin/env bash
# Builds the BudPipeline container image (OCI) from one commit, reproducibly: the same commit,
# built in the same folder on this machine kind, gives the same image digest, clean build or not.
# No container engine is needed: buildah (from Debian) assembles the layers in a storage of its own
# under the output folder.
#
#   scripts/container-image.sh [COMMIT]        default HEAD; uncommitted changes are not built
#
# What is in the image (distroless: only what the programs load, no shell, no package manager):
#   /usr/bin/budpipeline                     the release build, ENTRYPOINT; CMD `serve`
#   /usr/lib/budpipeline/plugins/*.so        the bundled plugins (the package's dynamic libraries)
#   /usr/lib/swift/linux/*.so                the Swift runtime they share (dynamic, see below)
#   /usr/bin/dot, .../graphviz/              Graphviz's dot with its SVG and dot-layout plugins only:
#                                            the SVG graphs of the API and the web console
#   /usr/lib/x86_64-linux-gnu/...            the Debian libraries `ldd` lists (libpq, libsqlite3, ...)
#   /etc/ssl/certs/ca-certificates.crt       CA certificates (HTTPS calls of plugins and webhooks)
#   /etc/passwd, /etc/group                  user and group `budpipeline`, 65532; the image runs as it
#   /var/lib/budpipeline                     the data dir (writable by 65532), the working directory
#   /var/lib/dpkg/status.d/, /usr/share/doc  which Debian package each library came from, and its copyright
#
# The Swift runtime is linked dynamically, not with --static-swift-stdlib: the Swift plugins are
# shared libraries that link libswiftCore.so and Foundation themselves, in the server and in its
# plugin processes (the same executable). A statically linked server would load a second Swift
# runtime and a second Foundation into its process with the first plugin; and SwiftPM cannot
# link the plugin products with --static-swift-stdlib at all. See docs/deployment.md.
#
# Output, under BUDPIPELINE_IMAGE_DIR (default .build-image/, ignored by git):
#   oci/                          the image as an OCI image layout, reference budpipeline:<tag>
#   budpipeline-<tag>.oci.tar     the same as one archive (`podman load -i`, `skopeo copy oci-archive:...`)
#   image-digest, image-tag       the manifest digest and the tag
#
# Settings: BUDPIPELINE_IMAGE_TAG (default <version>-<short commit>), SOURCE_DATE_EPOCH (default
# the commit's time: every file and the image's dates), BUDPIPELINE_IMAGE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
source scripts/bootstrap.sh run

fail() {
    echo "container-image: $*" >&2
    exit 1
}

# buildah (layers and image), ca-certificates (the CA bundle), binutils (strip) from Debian.
image_packages=(buildah ca-certificates binutils)
missing=()
for package in "${image_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "container-image: installing ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ "$(id -u)" -eq 0 ] || fail "run as root: buildah writes files owned by other users into its storage"

commit=$(git rev-parse --verify "${1:-HEAD}^{commit}") || fail "no such commit: ${1:-HEAD}"
short=$(git rev-parse --short=7 "$commit")
epoch=${SOURCE_DATE_EPOCH:-$(git show -s --format=%ct "$commit")}
work=${BUDPIPELINE_IMAGE_DIR:-$repo/.build-image}
mkdir -p "$work"
work=$(cd "$work" && pwd)
src=$work/src
build=$work/build
stage=$work/stage
out=$work/oci
started=$SECONDS

step() {
    echo "==> $* ($((SECONDS - started))s)"
}

# 1. The commit's files, exactly: `git archive`, not the work tree.
if [ "$(cat "$src/.budpipeline-commit" 2>/dev/null)" != "$commit" ]; then
    step "sources of $short (git archive)"
    rm -rf "$src"
    mkdir -p "$src"
    git archive --format=tar "$commit" | tar -x -C "$src"
    echo "$commit" >"$src/.budpipeline-commit"
fi

# 2. The release build: the executable and every `.library(type: .dynamic)` product (the plugins).
# The build folders' paths are mapped to fixed ones in debug info and C's __FILE__, so that they
# leave no trace in the binaries; Swift's #filePath is not mapped (one use, in PluginTemplate.swift),
# so compare digests of builds made in the same folder.
cd "$src"
plugins=$(swift package --scratch-path "$build" dump-package | python3 -c '
import json, sys
package = json.load(sys.stdin)
for product in package["products"]:
    if product["type"].get("library") == ["dynamic"]:
        print(product["name"])
')
[ -n "$plugins" ] || fail "Package.swift declares no dynamic library products (plugins)"
prefix_map=(
    -Xswiftc -file-prefix-map -Xswiftc "$src=/budpipeline/src"
    -Xswiftc -file-prefix-map -Xswiftc "$build=/budpipeline/build"
    -Xcc "-ffile-prefix-map=$src=/budpipeline/src" -Xcc "-ffile-prefix-map=$build=/budpipeline/build"
    -Xcxx "-ffile-prefix-map=$src=/budpipeline/src" -Xcxx "-ffile-prefix-map=$build=/budpipeline/build"
)
for product in budpipeline $plugins; do
    step "release build: $product"
    swift build -c release --scratch-path "$build" "${prefix_map[@]}" --product "$product"
done
bin=$(swift build -c release --scratch-path "$build" "${prefix_map[@]}" --show-bin-path)
cd "$repo"
version=$("$bin/budpipeline" --version | cut -d' ' -f1)
tag=${BUDPIPELINE_IMAGE_TAG:-$version-$short}

# 3. The root filesystem, in three layers: Debian's libraries and /etc; the Swift runtime; the
# server and its plugins (the layer that changes with every commit).
step "root filesystem (distroless: what ldd lists)"
rm -rf "$stage"
system=$stage/system
runtime=$stage/runtime
app=$stage/app
mkdir -p "$system" "$runtime" "$app/usr/bin" "$app/usr/lib/budpipeline/plugins"

# strip --strip-debug: the DWARF of a release build is most of its size; the symbol table stays
# (backtraces name functions). Then two things that differ from one clean build to the next while
# the code does not: `.swift_modhash` (the compiler's hashes of its LLVM modules, for incremental
# builds; a module's hash changes with the signature of the clang modules it imports, and nothing
# reads it at run time) is zeroed, and the GNU build id, which the linker computed over everything
# including those hashes and the debug info, is computed again over the result (SHA-1, as ld).
normalize_elf() {
    python3 - "$@" <<'EOF'
import hashlib, struct, sys
for path in sys.argv[1:]:
    data = bytearray(open(path, "rb").read())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit("%s: not a 64-bit little-endian ELF file" % path)
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    def header(index):
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size
    names = header(shstrndx)[1]
    build_id = None
    for index in range(shnum):
        name, offset, size = header(index)
        name = data[names + name:data.index(b"\0", names + name)].decode()
        if name == ".swift_modhash":
            data[offset:offset + size] = bytes(size)
        elif name == ".note.gnu.build-id":
            build_id = offset
    if build_id is not None:
        namesz, descsz, _ = struct.unpack_from("<III", data, build_id)
        desc = build_id + 12 + ((namesz + 3) & ~3)
        data[desc:desc + descsz] = bytes(descsz)
        data[desc:desc + descsz] = (hashlib.sha1(data).digest() * 2)[:descsz]
    open(path, "wb").write(data)
EOF
}
strip --strip-debug -o "$app/usr/bin/budpipeline" "$bin/budpipeline"
for product in $plugins; do
    strip --strip-debug -o "$app/usr/lib/budpipeline/plugins/lib$product.so" "$bin/lib$product.so"
done
normalize_elf "$app/usr/bin/budpipeline" "$app"/usr/lib/budpipeline/plugins/*.so

# Graphviz's dot for the SVG graphs (docs/console.md): the program and two of its plugins, the
# core renderers (SVG) and the dot layout, with a plugin list naming just those (`dot -c`).
graphviz_dir=/usr/lib/x86_64-linux-gnu/graphviz
install -D -m 0755 "$(readlink -f /usr/bin/dot)" "$system/usr/bin/dot"
for plugin in core dot_layout; do
    install -D -m 0644 "$(readlink -f "$graphviz_dir/libgvplugin_$plugin.so.6")" "$system$graphviz_dir/libgvplugin_$plugin.so.6"
done
GVBINDIR="$system$graphviz_dir" dot -c
[ -s "$system$graphviz_dir/config6a" ] || fail "dot -c wrote no plugin list"

# Every library the executable, the plugins and dot load, and the dynamic loader.
libraries=$(
    for file in "$app/usr/bin/budpipeline" "$app"/usr/lib/budpipeline/plugins/*.so "$system/usr/bin/dot" "$system$graphviz_dir"/*.so.6; do
        ldd "$file" | awk -v file="$file" '
            /not found/ { print "MISSING " $1 " (for " file ")"; next }
            $2 == "=>" && $3 ~ /^\// { print $3 }
            $1 ~ /^\/.*ld-linux/ { print $1 }'
    done | sort -u
)
if grep -q '^MISSING' <<<"$libraries"; then
    grep '^MISSING' <<<"$libraries" >&2
    fail "ldd cannot resolve every library"
fi
swift_lib_dir=$(cd "$(dirname "$(command -v swift)")/../lib/swift/linux" && pwd -P)
declare -A debian_packages=()
for library in $libraries; do
    real=$(readlink -f "$library")
    directory=$(cd "$(dirname "$library")" && pwd -P)
    name=$(basename "$library")
    if [ "$directory" = "$swift_lib_dir" ]; then
        install -D -m 0755 "$real" "$runtime/usr/lib/swift/linux/$name"
        continue
    fi
    case $directory in
        /usr/lib/x86_64-linux-gnu | /usr/lib64) ;;
        *) fail "unexpected library location $library ($directory)" ;;
    esac
    install -D -m "$(stat -c %a "$real")" "$real" "$system/usr/lib/x86_64-linux-gnu/$name"
    package=$(dpkg -S "$real" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$package" ] || package=$(dpkg -S "/lib/x86_64-linux-gnu/$(basename "$real")" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$package" ] || fail "no Debian package owns $real"
    debian_packages[$package]=1
done
[ -e "$system/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || fail "the dynamic loader was not found"
debian_packages[ca-certificates]=1
debian_packages[base-files]=1
debian_packages[graphviz]=1
debian_packages[libgvc6]=1

# Merged /usr, as in Debian 12: the loader is /lib64/ld-linux-x86-64.so.2.
ln -s usr/lib "$system/lib"
ln -s usr/bin "$system/bin"
ln -s usr/sbin "$system/sbin"
ln -s usr/lib64 "$system/lib64"
mkdir -p "$system/usr/lib64" "$system/usr/bin" "$system/usr/sbin"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$system/usr/lib64/ld-linux-x86-64.so.2"

mkdir -p "$system/etc/ssl/certs" "$system/tmp" "$system/proc" "$system/sys" "$system/dev" \
    "$system/var/lib/budpipeline" "$system/var/lib/dpkg/status.d" "$system/usr/share/doc"
chmod 1777 "$system/tmp"
install -m 0644 "$(readlink -f /etc/ssl/certs/ca-certificates.crt)" "$system/etc/ssl/certs/ca-certificates.crt"
install -m 0644 /etc/os-release "$system/etc/os-release"
cat >"$system/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
budpipeline:x:65532:65532:budpipeline:/var/lib/budpipeline:/sbin/nologin
EOF
cat >"$system/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
budpipeline:x:65532:
EOF
# /etc/hosts first, so `localhost` (the Dapr sidecar) never goes to DNS. Container runtimes
# mount their own /etc/hosts over this one; it is for runs without one.
cat >"$system/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
shadow: files
hosts: files dns
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$system/etc/hosts"
chmod 0644 "$system/etc/passwd" "$system/etc/group" "$system/etc/nsswitch.conf" "$system/etc/hosts"
# Where the Swift runtime is: the binaries' RUNPATH names the toolchain's folder, absent here.
echo /usr/lib/swift/linux >"$system/etc/ld.so.conf"
# For scanners (and people): the packages the libraries came from, as distroless images list them.
for package in $(printf '%s\n' "${!debian_packages[@]}" | sort); do
    dpkg-query -s "$package" >"$system/var/lib/dpkg/status.d/$package"
    if [ -f "/usr/share/doc/$package/copyright" ]; then
        install -D -m 0644 "/usr/share/doc/$package/copyright" "$system/usr/share/doc/$package/copyright"
    fi
done
swift_license=$(cd "$swift_lib_dir/../../.." && pwd)/share/swift/LICENSE.txt
if [ -f "$swift_license" ]; then
    install -D -m 0644 "$swift_license" "$runtime/usr/share/doc/swift/LICENSE.txt"
fi

# The loader's cache, made from both lower layers together (it lives in the runtime layer).
merged=$stage/merged
mkdir -p "$merged"
cp -a "$system/." "$runtime/." "$merged/"
ldconfig -X -r "$merged"
install -D -m 0644 "$merged/etc/ld.so.cache" "$runtime/etc/ld.so.cache"
rm -rf "$merged"

# 4. The image. Each layer is a commit of a container whose files are copied in; buildah writes
# every file's time as SOURCE_DATE_EPOCH and the image's own dates the same.
step "image (buildah, vfs storage in $work/containers)"
storage=$work/containers
rm -rf "$storage" "$out"
buildah_() {
    buildah --storage-driver vfs --root "$storage/storage" --runroot "$storage/run" "$@"
}
add_layer() { # base, folder, image name, description
    local container mountpoint
    container=$(buildah_ from --quiet --pull-never "$1")
    mountpoint=$(buildah_ mount "$container")
    cp -a "$2/." "$mountpoint/"
    buildah_ umount "$container" >/dev/null
    buildah_ config --created-by "$4" "$container"
    if [ "$3" = final ]; then
        configure_image "$container"
        buildah_ commit --quiet --timestamp "$epoch" --disable-compression=false --rm "$container" "oci:$out:budpipeline:$tag" >/dev/null
    else
        buildah_ commit --quiet --timestamp "$epoch" --rm "$container" "$3" >/dev/null
    fi
}
configure_image() {
    local created
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
    buildah_ config \
        --entrypoint '["/usr/bin/budpipeline"]' \
        --cmd serve \
        --user 65532:65532 \
        --workingdir /var/lib/budpipeline \
        --port 8010/tcp \
        --stop-signal SIGTERM \
        --env PATH=/usr/bin:/bin \
        --env LANG=C.UTF-8 \
        --env HOME=/var/lib/budpipeline \
        --env TMPDIR=/tmp \
        --env HOST=0.0.0.0 \
        --env PORT=8010 \
        --env BUDPIPELINE_DATA_DIR=/var/lib/budpipeline \
        --env BUDPIPELINE_PLUGIN_DIRS=/usr/lib/budpipeline/plugins \
        --label org.opencontainers.image.title=budpipeline \
        --label "org.opencontainers.image.version=$version" \
        --label "org.opencontainers.image.revision=$commit" \
        --label "org.opencontainers.image.created=$created" \
        --label org.opencontainers.image.licenses=Apache-2.0 \
        "$1"
}
chown 65532:65532 "$system/var/lib/budpipeline"
chmod 0750 "$system/var/lib/budpipeline"
add_layer scratch "$system" budpipeline-system "system: Debian 12 libraries (ldd), CA certificates, /etc"
add_layer budpipeline-system "$runtime" budpipeline-runtime "runtime: Swift $(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9.]*\).*/\1/p' | head -1) shared libraries"
add_layer budpipeline-runtime "$app" final "budpipeline $version ($commit): executable and bundled plugins"
buildah_ rmi --all >/dev/null 2>&1 || true

# 5. One archive of the layout, deterministic too.
step "archive"
rm -f "$work"/budpipeline-*.oci.tar
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$out" -cf "$work/budpipeline-$tag.oci.tar" .

digest=$(python3 -c '
import json, sys
index = json.load(open(sys.argv[1] + "/index.json"))
print(index["manifests"][0]["digest"])' "$out")
size=$(python3 -c '
import json, sys, os
out = sys.argv[1]
def blob(digest):
    return os.path.join(out, "blobs", *digest.split(":"))
index = json.load(open(os.path.join(out, "index.json")))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
print(sum(layer["size"] for layer in manifest["layers"]))' "$out")
echo "$digest" >"$work/image-digest"
echo "$tag" >"$work/image-tag"
unpacked=$(du -sb --apparent-size "$system" "$runtime" "$app" | awk '{ total += $1 } END { print total }')
step "done"
echo "image:      budpipeline:$tag ($commit)"
echo "digest:     $digest"
echo "size:       $((size / 1024 / 1024)) MiB compressed, $((unpacked / 1024 / 1024)) MiB unpacked"
echo "layout:     $out (oci:$out:budpipeline:$tag)"
echo "archive:    $work/budpipeline-$tag.oci.tar"
